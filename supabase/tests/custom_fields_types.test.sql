-- Custom fields by name beyond contacts (20261204020000_keapsync_custom_fields_everywhere.sql):
-- every registry type with a map_column (companies, tasks, opportunities, subscriptions) stores
-- v2's values by id, has a typed keap.<table>_custom view from v2's model, pushes the record's
-- whole list when a value changes (subscriptions: parked, as any local change of one), and keeps
-- its view under the table's RLS. custom_fields_v1_types.test.sql covers notes and orders
-- (v1 records with v2's lists); custom_fields.test.sql covers what all types share (names, hostile labels, renames) through contacts.
begin;
create extension if not exists pgtap;
select plan(35);

insert into auth.users (id, email) values
  ('a0000000-0000-4000-8000-00000000000a', 'viewer-a@example.com'),
  ('a0000000-0000-4000-8000-0000000000ad', 'admin-a@example.com'),
  ('b0000000-0000-4000-8000-00000000000b', 'viewer-b@example.com');
insert into keapsync.accounts (id, name) values
  ('aaaaaaaa-0000-4000-8000-000000000000', 'A'), ('bbbbbbbb-0000-4000-8000-000000000000', 'B');
insert into keapsync.members (account_id, user_id, role) values
  ('aaaaaaaa-0000-4000-8000-000000000000', 'a0000000-0000-4000-8000-00000000000a', 'viewer'),
  ('aaaaaaaa-0000-4000-8000-000000000000', 'a0000000-0000-4000-8000-0000000000ad', 'admin'),
  ('bbbbbbbb-0000-4000-8000-000000000000', 'b0000000-0000-4000-8000-00000000000b', 'viewer');

-- The types under test, each with a v2 record of its own shape (ids as strings, as v2 sends them).
create temp table types (object_type text, tbl text, clock text, extra jsonb, pushed boolean);
insert into types values
  ('company', 'companies', 'update_time', '{"company_name": "Acme"}', true),
  ('task', 'tasks', 'modification_time', '{"title": "Call"}', true),
  ('opportunity', 'opportunities', 'last_updated_time', '{"opportunity_title": "Deal", "stage": {"id": "1"}}', true),
  ('subscription', 'subscriptions', 'modification_time', '{"billing_cycle": "MONTH"}', false);

select is((select array_agg(object_type order by object_type) from keapsync.object_types where map_column is not null),
          array['company', 'contact', 'note', 'opportunity', 'order', 'subscription', 'task'], 'the types that keep custom fields');
select is((select array_agg(c.relname::text order by c.relname) from pg_class c
            where c.relnamespace = 'keap'::regnamespace and c.relkind = 'v' and c.relname like '%\_custom'),
          array['companies_custom', 'contacts_custom', 'notes_custom', 'opportunities_custom', 'orders_custom',
                'subscriptions_custom', 'tasks_custom'],
          'each has its view, and no other type has one (products, tags, stages carry none)');

select keapsync.apply_keap_record(a.id, t.object_type, t.extra || jsonb_build_object('id', '7', t.clock, '2026-01-01T00:00:00Z',
         'custom_fields', case when a.name = 'A'
           then '[{"id": "31", "content": 1250.5}, {"id": "32", "content": "2027-01-31"}, {"id": "33", "content": "Gold,Silver"},
                  {"id": "34", "content": null}]'::jsonb
           else '[{"id": "41", "content": "b-secret"}]'::jsonb end))
  from types t cross join keapsync.accounts a;
select is(array(select custom_fields from keap.companies where account_id = 'aaaaaaaa-0000-4000-8000-000000000000'
                union all select custom_fields from keap.tasks where account_id = 'aaaaaaaa-0000-4000-8000-000000000000'
                union all select custom_fields from keap.opportunities where account_id = 'aaaaaaaa-0000-4000-8000-000000000000'
                union all select custom_fields from keap.subscriptions where account_id = 'aaaaaaaa-0000-4000-8000-000000000000'),
          array_fill('{"31": 1250.5, "32": "2027-01-31", "33": "Gold,Silver"}'::jsonb, array[4]),
          'v2''s values are stored by id, as v1''s are (null content is no value)');

-- v2's model: string ids, v2's spelling of the types.
select is(keapsync.apply_custom_field_model('aaaaaaaa-0000-4000-8000-000000000000', t.object_type, $$[
  {"id": "31", "label": "Deal size", "field_type": "DECIMAL_NUMBER", "record_type": "X"},
  {"id": "32", "label": "Go-live", "field_type": "DATE"},
  {"id": "33", "label": "Tiers", "field_type": "LIST_BOX", "options": [{"id": "1", "label": "Gold"}, {"id": "2", "label": "Silver"}]}]$$),
  3, 'the ' || t.object_type || ' model is stored')
  from types t order by t.object_type;
select keapsync.apply_custom_field_model('bbbbbbbb-0000-4000-8000-000000000000', t.object_type,
  '[{"id": "41", "label": "Secret", "field_type": "TEXT"}]') from types t;
select is((select string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod), ', ' order by a.attnum)
             from pg_attribute a where a.attrelid = format('keap.%I_custom', t.tbl)::regclass and a.attnum > 0),
          'id bigint, account_id uuid, keap_id bigint, deal_size numeric, go_live date, tiers text[], secret text',
          'keap.' || t.tbl || '_custom: a typed column per label')
  from types t order by t.object_type;
create function pg_temp.view_row(p_tbl text, p_account uuid) returns text language plpgsql as $$
declare
  r text;
begin
  execute format('select row(deal_size, go_live, tiers, secret)::text from keap.%I_custom where account_id = $1', p_tbl) into r using p_account;
  return r;
end;
$$;
select is(pg_temp.view_row(t.tbl, 'aaaaaaaa-0000-4000-8000-000000000000'), '(1250.5,2027-01-31,"{Gold,Silver}",)',
          t.tbl || '_custom reads A''s values by name') from types t order by t.object_type;

-- A record read without its list (Keap leaves custom_fields out unless asked) keeps its values.
select keapsync.apply_keap_record('aaaaaaaa-0000-4000-8000-000000000000', t.object_type,
         t.extra || jsonb_build_object('id', '7', t.clock, '2026-01-02T00:00:00Z'))
  from types t;
select is(pg_temp.view_row(t.tbl, 'aaaaaaaa-0000-4000-8000-000000000000'), '(1250.5,2027-01-31,"{Gold,Silver}",)',
          'a ' || t.object_type || ' without its custom_fields list keeps its values') from types t order by t.object_type;

-- What push sends: the record's whole list (v2 replaces it), ids as strings, a cleared value left out.
select is(keapsync.keap_body(t.object_type, '{"custom_fields.31": 99, "custom_fields.33": "Gold", "custom_fields.32": null}',
                             array['custom_fields.31', 'custom_fields.32']),
          '{"body": {"custom_fields": [{"id": "31", "content": 99}, {"id": "33", "content": "Gold"}]}, "update_mask": ["custom_fields"]}',
          t.object_type || ': a changed custom field sends every value, by string id')
  from types t where t.pushed order by t.object_type;
select is(keapsync.keap_body('task', '{"title": "T", "custom_fields.31": 99}', array['title']) -> 'body' ? 'custom_fields', false,
          'no custom field changed: none is sent');

-- Writes through the views are local edits of the record, by id.
select set_config('keapsync.origin', '', true);  -- the applies above marked the transaction as Keap's
update keap.companies_custom set deal_size = 99, go_live = null, tiers = array['Silver'] where account_id = 'aaaaaaaa-0000-4000-8000-000000000000';
update keap.tasks_custom set deal_size = 99, go_live = null, tiers = array['Silver'] where account_id = 'aaaaaaaa-0000-4000-8000-000000000000';
update keap.opportunities_custom set deal_size = 99, go_live = null, tiers = array['Silver'] where account_id = 'aaaaaaaa-0000-4000-8000-000000000000';
update keap.subscriptions_custom set deal_size = 99, go_live = null, tiers = array['Silver'] where account_id = 'aaaaaaaa-0000-4000-8000-000000000000';
select is(array(select custom_fields from keap.companies where account_id = 'aaaaaaaa-0000-4000-8000-000000000000'
                union all select custom_fields from keap.tasks where account_id = 'aaaaaaaa-0000-4000-8000-000000000000'
                union all select custom_fields from keap.opportunities where account_id = 'aaaaaaaa-0000-4000-8000-000000000000'
                union all select custom_fields from keap.subscriptions where account_id = 'aaaaaaaa-0000-4000-8000-000000000000'),
          array_fill('{"31": 99, "33": "Silver"}'::jsonb, array[4]), 'an update of a view writes the row''s custom_fields by id');
select is((select array_agg(h.table_name::text order by h.table_name) from keapsync.change_history h
            where h.origin = 'local' and h.changed ? 'custom_fields'),
          array['companies', 'opportunities', 'subscriptions', 'tasks'], 'each a local change, recorded like one made to the table');
select is((select keapsync.push_request(s.account_id, 'subscription', s.local_id) ->> 'op' from keapsync.sync_state s
            where s.object_type = 'subscription' and s.account_id = 'aaaaaaaa-0000-4000-8000-000000000000'),
          'unsupported', 'a subscription''s is parked with the reason, as any local change of one');

-- RLS: the views are security_invoker, so the table's policies decide.
create function pg_temp.attempt(p_who text, p_sql text) returns text language plpgsql as $$
declare
  n bigint;
begin
  begin
    perform set_config('request.jwt.claims', case p_who
      when 'viewer_a' then '{"role": "authenticated", "sub": "a0000000-0000-4000-8000-00000000000a"}'
      when 'admin_a' then '{"role": "authenticated", "sub": "a0000000-0000-4000-8000-0000000000ad"}'
      when 'viewer_b' then '{"role": "authenticated", "sub": "b0000000-0000-4000-8000-00000000000b"}'
      else '' end, true);
    perform set_config('role', case p_who when 'anon' then 'anon' when 'analyst' then 'keap_analyst'
                                          else 'authenticated' end, true);
    if p_sql like 'select%' then
      execute p_sql into n;
    else
      execute p_sql;
      get diagnostics n = row_count;
    end if;
    raise exception using errcode = 'KS001', message = n::text;
  exception
    when insufficient_privilege then return 'denied';
    when sqlstate 'KS001' then return sqlerrm;
  end;
end;
$$;
select is(string_agg(pg_temp.attempt(w.who, format(w.q, t.tbl)), ',' order by w.n),
          '1,1,2,denied,1,0,0,denied', t.tbl || '_custom: members read their account''s rows, admins write them, analysts read all')
  from types t cross join (values
    (1, 'viewer_a', 'select count(deal_size) from keap.%I_custom'),
    (2, 'viewer_b', 'select count(secret) from keap.%I_custom'),
    (3, 'analyst', 'select count(*) from keap.%I_custom'),
    (4, 'anon', 'select count(*) from keap.%I_custom'),
    (5, 'admin_a', 'update keap.%I_custom set deal_size = 7'),
    (6, 'viewer_a', 'update keap.%I_custom set deal_size = 8'),
    (7, 'admin_a', $$update keap.%I_custom set secret = 'x' where account_id = 'bbbbbbbb-0000-4000-8000-000000000000'$$),
    (8, 'analyst', 'update keap.%I_custom set deal_size = 9')) w(n, who, q)
 group by t.tbl order by t.tbl;
select is((select reloptions from pg_class where oid = format('keap.%I_custom', t.tbl)::regclass), array['security_invoker=true'],
          t.tbl || '_custom runs as whoever queries it') from types t order by t.object_type;
select is((select count(*)::int from keap.companies where account_id = 'bbbbbbbb-0000-4000-8000-000000000000' and custom_fields ->> '41' = 'b-secret'), 1,
          'B''s values are untouched');

select * from finish();
rollback;
