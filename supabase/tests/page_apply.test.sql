-- The page apply (apply_keap_page, what a backfill's page goes through) leaves exactly what the
-- per-record apply leaves: rows, sync state, tags, order children, conflicts, history, KPI
-- summaries and outcomes, for new, known, edited, stale, duplicate and out-of-order records.
-- Account A takes each page through apply_keap_page, account B record by record.
begin;
create extension if not exists pgtap;
select plan(22);

insert into keapsync.accounts (id, name) values
  ('50000000-0000-4000-8000-00000000000a', 'Page'),
  ('50000000-0000-4000-8000-00000000000b', 'Record');

create temp table pages (n int, type text, raws jsonb);
insert into pages values
  (1, 'contact', '[
    {"id": 1, "given_name": "Ada", "family_name": "Okafor", "tag_ids": [11, 12],
     "email_addresses": [{"email": "b@example.com", "field": "EMAIL2"}, {"email": "a@example.com", "field": "EMAIL1"}],
     "phone_numbers": [{"number": "555-1", "field": "PHONE1"}],
     "addresses": [{"field": "SHIPPING", "line1": "1 Ship St"}, {"field": "BILLING", "line1": "2 Bill St", "zip_code": "97201"}],
     "custom_fields": [{"id": 1, "content": "amber"}, {"id": 2, "content": 18}, {"id": 3, "content": null}],
     "date_created": "2026-01-01T00:00:00.000Z", "last_updated": "2026-01-02T00:00:00.000Z"},
    {"id": 2, "given_name": "Bo", "last_updated": "2026-01-02T00:00:00.000Z", "company": {"id": 9, "company_name": "Acme"}},
    {"id": 2, "given_name": "Bo older", "last_updated": "2026-01-01T00:00:00.000Z"},
    {"id": 3, "given_name": "Cy", "last_updated": "2026-01-03 10:00:00", "tag_ids": [12, 13], "email_opted_in": true},
    {"id": 4, "given_name": "Di", "tag_ids": []},
    {"id": 5, "given_name": "Ed", "last_updated": "2026-01-05T00:00:00+02:00", "owner_id": 7}]'),
  (1, 'order', '[
    {"id": 1, "title": "O1", "total": 10, "contact": {"id": 1}, "modification_date": "2026-01-01T00:00:00.000Z",
     "order_items": [{"id": 1, "name": "Widget", "quantity": 2, "price": 5}]},
    {"id": 2, "title": "O2", "total": 20.5, "modification_date": "2026-01-02T00:00:00.000Z"}]'),
  -- After local edits (below): known records merge, some conflict; new ones insert; an older
  -- version is stale, the same one a duplicate, and a page may hold an id twice. (A new id's
  -- older copy comes after its newer one here: the page inserts only the newest copy, where
  -- record by record an older one first would be inserted and then updated; batch.test.sql.)
  (2, 'contact', '[
    {"id": 1, "given_name": "Ada", "family_name": "Keap", "tag_ids": [11],
     "custom_fields": [{"id": 1, "content": "blue"}], "last_updated": "2026-01-04T00:00:00.000Z"},
    {"id": 2, "given_name": "Bo", "last_updated": "2026-01-02T00:00:00.000Z", "company": {"id": 9, "company_name": "Acme"}},
    {"id": 3, "given_name": "Cy old", "last_updated": "2026-01-01T00:00:00.000Z"},
    {"id": 5, "given_name": "Ed two", "job_title": "Boss", "last_updated": "2026-01-06T00:00:00.000Z"},
    {"id": 6, "given_name": "Fay newer", "tag_ids": [14], "last_updated": "2026-01-07T00:00:00.000Z"},
    {"id": 6, "given_name": "Fay", "tag_ids": [13, 14], "last_updated": "2026-01-06T00:00:00.000Z"},
    {"id": 4, "given_name": "Di", "tag_ids": [11], "last_updated": "2026-01-08T00:00:00.000Z"}]'),
  (2, 'order', '[
    {"id": 2, "title": "O2 renamed", "total": 20.5, "modification_date": "2026-01-03T00:00:00.000Z"},
    {"id": 3, "title": "O3", "total": 1, "modification_date": "2026-01-03T00:00:00.000Z"}]');

create temp table outcomes (account uuid, n int, type text, outcome jsonb);

-- Both accounts get the same pages; each page through its own path.
create function pg_temp.apply_round(p_n int) returns void language plpgsql as $$
declare p record;
begin
  for p in select * from pages where n = p_n order by type loop
    insert into outcomes
    select '50000000-0000-4000-8000-00000000000a', p.n, p.type,
           keapsync.apply_keap_page('50000000-0000-4000-8000-00000000000a', p.type,
                                    array(select x from jsonb_array_elements(p.raws) x));
    insert into outcomes
    select '50000000-0000-4000-8000-00000000000b', p.n, p.type,
           (select jsonb_object_agg(outcome, c) from (
              select outcome, count(*) c
                from keapsync.apply_keap_records('50000000-0000-4000-8000-00000000000b', p.type, p.raws)
               group by 1) o);
  end loop;
end $$;

select pg_temp.apply_round(1);
-- Local edits, the same in both accounts: one field Keap then changes too (a conflict), one it
-- leaves alone, and a tag removed here.
update keap.contacts set family_name = 'Local', job_title = 'Chief' where keap_id = 1;
update keap.contacts set given_name = 'Ed local' where keap_id = 5;
delete from keap.contact_tags ct using keap.contacts c, keap.tags t
 where c.id = ct.contact_id and t.id = ct.tag_id and c.keap_id = 3 and t.keap_id = 13;
select pg_temp.apply_round(2);

-- What each account holds, without its own ids.
create function pg_temp.snapshot(p_account uuid, p_what text) returns setof text language plpgsql as $$
begin
  case p_what
  when 'contacts' then return query
    select (to_jsonb(c) - array['id', 'account_id', 'created_at', 'updated_at'])::text from keap.contacts c where account_id = p_account;
  when 'orders' then return query
    select (to_jsonb(o) - array['id', 'account_id', 'contact_id', 'created_at', 'updated_at'])::text from keap.orders o where account_id = p_account;
  when 'order_items' then return query
    select (to_jsonb(i) - array['id', 'account_id', 'order_id', 'created_at', 'updated_at'])::text || o.keap_id
      from keap.order_items i join keap.orders o on o.id = i.order_id where i.account_id = p_account;
  when 'tags' then return query
    select (to_jsonb(t) - array['id', 'account_id', 'category_id', 'created_at', 'updated_at'])::text from keap.tags t where account_id = p_account;
  when 'contact_tags' then return query
    select c.keap_id || '/' || t.keap_id || '/' || ct.sync_origin from keap.contact_tags ct
      join keap.contacts c on c.id = ct.contact_id join keap.tags t on t.id = ct.tag_id where ct.account_id = p_account;
  when 'sync_state' then return query
    select concat_ws(' ', s.object_type, s.keap_id, s.agreed, s.keap_modified, s.local_deleted_at,
                     (select array_agg(k order by k) from jsonb_object_keys(s.local_changed_at) k),
                     s.last_applied_at is not null)
      from keapsync.sync_state s where account_id = p_account;
  when 'conflicts' then return query
    select concat_ws(' ', object_type, keap_id, field, base_value, local_value, keap_value, keap_modified, policy,
                     status, resolution, resolved_value)
      from keapsync.conflicts where account_id = p_account;
  when 'history' then return query
    select concat_ws(' ', h.table_name, h.keap_id, h.op, h.origin,
                     h.changed - array['id', 'contact_id', 'tag_id', 'order_id', 'account_id', 'category_id'],
                     h.old_row - array['id', 'contact_id', 'tag_id', 'order_id', 'account_id', 'category_id', 'updated_at', 'created_at'],
                     h.new_row - array['id', 'contact_id', 'tag_id', 'order_id', 'account_id', 'category_id', 'updated_at', 'created_at'],
                     case when h.table_name = 'contact_tags' then (select t.keap_id from keap.tags t where t.id = (h.changed ->> 'tag_id')::bigint) end)
      from keapsync.change_history h where account_id = p_account;
  when 'kpi' then return query
    select 'week ' || week || ' ' || contacts from keapsync.kpi_contacts_by_week where account_id = p_account
    union all
    select 'tag ' || t.keap_id || ' ' || sum(k.contacts) from keapsync.kpi_tag_counts k join keap.tags t on t.id = k.tag_id
     where k.account_id = p_account group by t.keap_id
    union all
    select 'orders ' || (to_jsonb(k) - 'account_id')::text from keapsync.kpi_orders_by_month k where account_id = p_account;
  end case;
end $$;

select bag_eq($$select * from pg_temp.snapshot('50000000-0000-4000-8000-00000000000a', 'contacts')$$,
              $$select * from pg_temp.snapshot('50000000-0000-4000-8000-00000000000b', 'contacts')$$, 'contacts the same');
select bag_eq($$select * from pg_temp.snapshot('50000000-0000-4000-8000-00000000000a', 'orders')$$,
              $$select * from pg_temp.snapshot('50000000-0000-4000-8000-00000000000b', 'orders')$$, 'orders the same');
select bag_eq($$select * from pg_temp.snapshot('50000000-0000-4000-8000-00000000000a', 'order_items')$$,
              $$select * from pg_temp.snapshot('50000000-0000-4000-8000-00000000000b', 'order_items')$$, 'order items the same');
select bag_eq($$select * from pg_temp.snapshot('50000000-0000-4000-8000-00000000000a', 'tags')$$,
              $$select * from pg_temp.snapshot('50000000-0000-4000-8000-00000000000b', 'tags')$$, 'tags the same');
select bag_eq($$select * from pg_temp.snapshot('50000000-0000-4000-8000-00000000000a', 'contact_tags')$$,
              $$select * from pg_temp.snapshot('50000000-0000-4000-8000-00000000000b', 'contact_tags')$$, 'contact tags the same');
select bag_eq($$select * from pg_temp.snapshot('50000000-0000-4000-8000-00000000000a', 'sync_state')$$,
              $$select * from pg_temp.snapshot('50000000-0000-4000-8000-00000000000b', 'sync_state')$$, 'sync state the same');
select bag_eq($$select * from pg_temp.snapshot('50000000-0000-4000-8000-00000000000a', 'conflicts')$$,
              $$select * from pg_temp.snapshot('50000000-0000-4000-8000-00000000000b', 'conflicts')$$, 'conflicts the same');
select bag_eq($$select * from pg_temp.snapshot('50000000-0000-4000-8000-00000000000a', 'history')$$,
              $$select * from pg_temp.snapshot('50000000-0000-4000-8000-00000000000b', 'history')$$, 'history the same');
select bag_eq($$select * from pg_temp.snapshot('50000000-0000-4000-8000-00000000000a', 'kpi')$$,
              $$select * from pg_temp.snapshot('50000000-0000-4000-8000-00000000000b', 'kpi')$$, 'KPI summaries the same');
-- Outcomes: the same, but that an older copy of an id the page inserts is skipped, not counted
-- 'stale' (round 1's second Bo; round 2's stale Cy counts in both).
select results_eq($$select n, type, outcome - 'stale' from outcomes where account = '50000000-0000-4000-8000-00000000000a' order by n, type$$,
                  $$select n, type, outcome - 'stale' from outcomes where account = '50000000-0000-4000-8000-00000000000b' order by n, type$$,
                  'the same outcomes');
-- The scenario did what it says (a test of equality that compares nothing proves nothing).
select is((select outcome from outcomes where account = '50000000-0000-4000-8000-00000000000a' and n = 2 and type = 'contact'),
          '{"inserted": 1, "updated": 3, "stale": 1, "duplicate": 1}'::jsonb, 'round 2 merged, inserted, skipped');
select ok((select count(*) from keapsync.conflicts where account_id = '50000000-0000-4000-8000-00000000000a') > 0, 'a conflict was met');
select ok((select count(*) from keapsync.change_history where account_id = '50000000-0000-4000-8000-00000000000a' and table_name = 'contact_tags') > 0,
          'tag history was written');

-- The page's one refusal: a record without an id refuses the whole page, applying nothing.
select throws_ok($$select keapsync.apply_keap_page('50000000-0000-4000-8000-00000000000a', 'contact',
                   array['{"id": 100, "given_name": "x"}', '{"given_name": "no id"}']::jsonb[])$$,
                 '22023', null, 'a record without an id refuses the page');
select throws_ok($$select keapsync.apply_keap_page('50000000-0000-4000-8000-00000000000a', 'nonsense', '{}'::jsonb[])$$,
                 '22023', null, 'an unknown type is refused');

-- keap_modified, now plpgsql, reads every stamp as before: for each type, Keap's field, with and
-- without a zone, and blank or absent.
select results_eq(
  $$select keapsync.keap_modified(t, r) from unnest(array['contact', 'order', 'subscription', 'tag', 'company', 'product', 'task', 'nonsense']) t,
      unnest(array['{"last_updated": "2026-01-02T03:04:05.678Z"}', '{"update_time": "2026-01-02 03:04:05"}',
                   '{"modification_date": "2026-01-02T03:04:05+02:00"}', '{"modification_time": " 2026-01-02T03:04:05Z "}',
                   '{"last_updated": ""}', '{}', '{"date_updated": "2026-01-02T03:04:05.000Z"}',
                   '{"update_time": "2026-01-02T03:04:05.000Z"}']::jsonb[]) r order by t, r::text$$,
  $$select keapsync.keap_time(case t
      when 'contact' then coalesce(r ->> 'last_updated', r ->> 'update_time')
      when 'order' then coalesce(r ->> 'modification_date', r ->> 'modification_time')
      when 'subscription' then r ->> 'modification_time'
      when 'tag' then r ->> 'update_time'
      else r #>> (select o.modified_path from keapsync.object_types o where o.object_type = t) end)
      from unnest(array['contact', 'order', 'subscription', 'tag', 'company', 'product', 'task', 'nonsense']) t,
      unnest(array['{"last_updated": "2026-01-02T03:04:05.678Z"}', '{"update_time": "2026-01-02 03:04:05"}',
                   '{"modification_date": "2026-01-02T03:04:05+02:00"}', '{"modification_time": " 2026-01-02T03:04:05Z "}',
                   '{"last_updated": ""}', '{}', '{"date_updated": "2026-01-02T03:04:05.000Z"}',
                   '{"update_time": "2026-01-02T03:04:05.000Z"}']::jsonb[]) r order by t, r::text$$,
  'keap_modified reads each type''s stamp as the SQL definition did');

-- keap_columns_of, now plpgsql, maps as the SQL definition did (these are its answers): a list of
-- several entries sorted (the first field's email, the billing address), one entry taken as it
-- is, none or no list at all all null, custom fields without content left out.
select is(keapsync.keap_columns_of('contact', '{"given_name": "A", "email_addresses": [{"email": "b@x", "field": "EMAIL2"}, {"email": "a@x", "field": "EMAIL1"}], "phone_numbers": [{"number": "555", "field": "PHONE2"}], "addresses": [{"field": "SHIPPING", "line1": "s"}, {"field": "BILLING", "line1": "b", "zip_code": "9"}], "custom_fields": [{"id": 1, "content": null}, {"id": 2, "content": "x"}, {"content": 3}], "company": {"id": 4, "company_name": "C"}}'),
  '{"email": "a@x", "phone": "555", "region": null, "locality": null, "owner_id": null, "job_title": null, "given_name": "A", "family_name": null, "middle_name": null, "postal_code": "9", "company_name": "C", "country_code": null, "date_created": null, "email_status": null, "last_updated": null, "address_line1": "b", "address_line2": null, "custom_fields": {"2": "x"}, "email_opted_in": null, "lead_source_id": null, "company_keap_id": "4"}'::jsonb,
  'a contact''s lists of several entries');
select is(keapsync.keap_columns_of('contact', '{"email_addresses": "x", "phone_numbers": [], "addresses": [null], "custom_fields": {"a": 1}, "company": "str", "company_name": "D"}'),
  '{"email": null, "phone": null, "region": null, "locality": null, "owner_id": null, "job_title": null, "given_name": null, "family_name": null, "middle_name": null, "postal_code": null, "company_name": "D", "country_code": null, "date_created": null, "email_status": null, "last_updated": null, "address_line1": null, "address_line2": null, "email_opted_in": null, "lead_source_id": null, "company_keap_id": null}'::jsonb,
  'a contact''s lists empty or not lists');
select is(keapsync.keap_columns_of('order', '{"contact": {"id": 4}, "title": "t", "total": 2}'),
  '{"notes": null, "title": "t", "total": "2", "status": null, "total_due": null, "order_date": null, "order_type": null, "total_paid": null, "source_type": null, "refund_total": null, "creation_date": null, "contact_keap_id": "4", "modification_date": null}'::jsonb,
  'an order');
select is(keapsync.keap_columns_of('company', '{"company_name": "C", "update_time": "u"}'),
  '{"email": null, "notes": null, "phone": null, "region": null, "website": null, "locality": null, "create_time": null, "postal_code": null, "update_time": "u", "company_name": "C", "country_code": null, "address_line1": null, "address_line2": null}'::jsonb,
  'a type mapped by keap_paths');

-- A page costs what its own records cost, not what the account already holds (issue #18): with
-- thousands of contacts stored, applying a page of new ones scans neither the stored contacts nor
-- their sync state (which is probed by key: no stored row fetched), so a backfill does not slow
-- down page after page.
select keapsync.apply_keap_page('50000000-0000-4000-8000-00000000000a', 'contact',
  array(select jsonb_build_object('id', 1000 + g, 'given_name', 'Stored', 'tag_ids', jsonb_build_array(11 + g % 3))
          from generate_series(1, 3000) g));
create temp table reads_before as
  select relid::regclass::text as rel, seq_scan, coalesce(idx_tup_fetch, 0) as fetched
    from pg_stat_xact_user_tables where relid in ('keap.contacts'::regclass, 'keapsync.sync_state'::regclass);
select is((keapsync.apply_keap_page('50000000-0000-4000-8000-00000000000a', 'contact',
            array(select jsonb_build_object('id', 9000 + g, 'given_name', 'New', 'tag_ids', jsonb_build_array(11, 15))
                    from generate_series(1, 200) g))) ->> 'inserted', '200', 'a page of new contacts after 3000 stored');
select results_eq(
  $$select a.rel, a.seq_scan - b.seq_scan, case when a.rel = 'keapsync.sync_state' then a.fetched - b.fetched end
      from (select relid::regclass::text as rel, seq_scan, coalesce(idx_tup_fetch, 0) as fetched from pg_stat_xact_user_tables) a
      join reads_before b using (rel) order by 1$$,
  $$values ('keap.contacts', 0::bigint, null::bigint), ('keapsync.sync_state', 0::bigint, 0::bigint)$$,
  'the page scanned no stored contact or sync state');

select * from finish();
rollback;
