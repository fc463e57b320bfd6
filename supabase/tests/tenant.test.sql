-- The cross-tenant matrix: a viewer and an admin of account A (and the service role, for the
-- functions that take an account and an id) are given account B's ids, for every function that
-- takes an id and every table that stores one. Each attempt must answer exactly as it does for an
-- id that does not exist (so it tells nothing, not even that the id exists), return none of B's
-- data, and leave every row of B as it was.
begin;
create extension if not exists pgtap;

-- ---- fixtures ----------------------------------------------------------------------------------
insert into auth.users (id, email) values
  ('a0000000-0000-4000-8000-00000000000a', 'viewer-a@example.com'),
  ('a0000000-0000-4000-8000-0000000000ad', 'admin-a@example.com');
insert into keapsync.accounts (id, name) values
  ('aaaaaaaa-0000-4000-8000-000000000000', 'A'), ('bbbbbbbb-0000-4000-8000-000000000000', 'B');
insert into keapsync.members (account_id, user_id, role) values
  ('aaaaaaaa-0000-4000-8000-000000000000', 'a0000000-0000-4000-8000-00000000000a', 'viewer'),
  ('aaaaaaaa-0000-4000-8000-000000000000', 'a0000000-0000-4000-8000-0000000000ad', 'admin');
insert into keapsync.settings (account_id, default_policy)
values ('aaaaaaaa-0000-4000-8000-000000000000', 'manual'), ('bbbbbbbb-0000-4000-8000-000000000000', 'manual');

-- One of everything in each account; B's text is 'b-secret' wherever it can be, so a leak shows.
create function pg_temp.fill(p_account uuid, p_word text, p_base bigint) returns void language plpgsql as $$
begin
  perform keapsync.apply_keap_record(p_account, 'tag', jsonb_build_object('id', p_base + 2, 'name', p_word));
  perform keapsync.apply_keap_record(p_account, 'tag_category', jsonb_build_object('id', p_base + 3, 'name', p_word));
  perform keapsync.apply_keap_record(p_account, 'contact', jsonb_build_object('id', p_base + 1, 'given_name', p_word,
    'family_name', p_word, 'tag_ids', jsonb_build_array(p_base + 2), 'last_updated', '2026-01-01T00:00:00Z',
    'custom_fields', jsonb_build_array(jsonb_build_object('id', 5, 'content', p_word))));
  perform keapsync.apply_custom_field_model(p_account, 'contact', '[{"id": 5, "label": "Secret", "field_type": "Text"}]');
  perform keapsync.apply_keap_record(p_account, 'order', jsonb_build_object('id', p_base + 4, 'title', p_word,
    'modification_date', '2026-01-01T00:00:00Z'));
  perform keapsync.apply_keap_record(p_account, 'subscription', jsonb_build_object('id', p_base + 5, 'active', true,
    'billing_cycle', p_word));
  perform keapsync.apply_keap_record(p_account, 'opportunity_stage', jsonb_build_object('id', (p_base + 8)::text, 'name', p_word,
    'updated_time', '2026-01-01T00:00:00Z'));
  perform keapsync.apply_keap_record(p_account, 'opportunity', jsonb_build_object('id', (p_base + 9)::text,
    'opportunity_title', p_word, 'contact', jsonb_build_object('id', (p_base + 1)::text),
    'stage', jsonb_build_object('id', (p_base + 8)::text), 'projected_revenue_high', 10, 'last_updated_time', '2026-01-01T00:00:00Z',
    'custom_fields', jsonb_build_array(jsonb_build_object('id', '6', 'content', p_word))));
  perform keapsync.apply_custom_field_model(p_account, 'opportunity', '[{"id": "6", "label": "Deal secret", "field_type": "TEXT"}]');
  perform keapsync.apply_keap_record(p_account, 'note', jsonb_build_object('id', p_base + 8, 'title', p_word, 'body', p_word,
    'contact_id', p_base + 1, 'last_updated', '2026-01-01T00:00:00Z'));
  insert into keap.order_items (account_id, order_id, keap_id, name)
  select p_account, id, p_base + 6, p_word from keap.orders where account_id = p_account;
  insert into keap.order_payments (account_id, order_id, keap_id, note)
  select p_account, id, p_base + 7, p_word from keap.orders where account_id = p_account;
  -- A local edit, then Keap's: history of both origins and an open (manual) conflict. (The
  -- applies above marked the transaction as Keap's.)
  perform set_config('keapsync.origin', '', true);
  update keap.contacts set job_title = p_word || ' local' where account_id = p_account;
  perform keapsync.apply_keap_record(p_account, 'contact', jsonb_build_object('id', p_base + 1, 'given_name', p_word,
    'family_name', p_word, 'job_title', p_word || ' keap', 'last_updated', '2026-01-02T00:00:00Z'));
  insert into keapsync.dead_letters (account_id, source, object_type, keap_id, payload, error)
  values (p_account, 'push', 'contact', p_base + 1, jsonb_build_object('given_name', p_word), p_word);
  insert into keapsync.push_queue (account_id, object_type, local_id)
  select p_account, 'contact', id from keap.contacts where account_id = p_account;
  perform set_config('keapsync.origin', '', true);
end;
$$;
select pg_temp.fill('aaaaaaaa-0000-4000-8000-000000000000', 'a-own', 1000);
select pg_temp.fill('bbbbbbbb-0000-4000-8000-000000000000', 'b-secret', 7000);

-- The placeholders of the calls below: B's ids (the foreign run) and ids nobody has (the missing
-- run). {A} is A in both runs; {B} is B's account, or an account that does not exist.
create temp table ids (name text, foreign_val text, missing_val text);
insert into ids
select '{B}', 'bbbbbbbb-0000-4000-8000-000000000000', 'dddddddd-0000-4000-8000-000000000000'
union all select '{A}', 'aaaaaaaa-0000-4000-8000-000000000000', 'aaaaaaaa-0000-4000-8000-000000000000'
union all select '{contact}', (select min(id) from keap.contacts where account_id = 'bbbbbbbb-0000-4000-8000-000000000000')::text, '900000001'
union all select '{tag}', (select min(id) from keap.tags where account_id = 'bbbbbbbb-0000-4000-8000-000000000000')::text, '900000002'
union all select '{category}', (select min(id) from keap.tag_categories where account_id = 'bbbbbbbb-0000-4000-8000-000000000000')::text, '900000003'
union all select '{order}', (select min(id) from keap.orders where account_id = 'bbbbbbbb-0000-4000-8000-000000000000')::text, '900000004'
union all select '{sub}', (select min(id) from keap.subscriptions where account_id = 'bbbbbbbb-0000-4000-8000-000000000000')::text, '900000005'
union all select '{item}', (select min(id) from keap.order_items where account_id = 'bbbbbbbb-0000-4000-8000-000000000000')::text, '900000006'
union all select '{payment}', (select min(id) from keap.order_payments where account_id = 'bbbbbbbb-0000-4000-8000-000000000000')::text, '900000007'
union all select '{conflict}', (select min(id) from keapsync.conflicts where account_id = 'bbbbbbbb-0000-4000-8000-000000000000' and status = 'open')::text, '900000008'
union all select '{history}', (select min(id) from keapsync.change_history where account_id = 'bbbbbbbb-0000-4000-8000-000000000000' and origin = 'local' and table_name = 'contacts')::text, '900000009'
union all select '{dead}', (select min(id) from keapsync.dead_letters where account_id = 'bbbbbbbb-0000-4000-8000-000000000000')::text, '900000010'
union all select '{opp}', (select min(id) from keap.opportunities where account_id = 'bbbbbbbb-0000-4000-8000-000000000000')::text, '900000012'
union all select '{stage}', (select min(id) from keap.opportunity_stages where account_id = 'bbbbbbbb-0000-4000-8000-000000000000')::text, '900000013'
union all select '{note}', (select min(id) from keap.notes where account_id = 'bbbbbbbb-0000-4000-8000-000000000000')::text, '900000014'
union all select '{inbox}', '-1', '-1'
-- B's Keap contact id; A's contacts have other Keap ids, so for A it is an id nobody has.
union all select '{keap}', '7001', '900000011'
union all select '{a_contact}', (select min(id) from keap.contacts where account_id = 'aaaaaaaa-0000-4000-8000-000000000000')::text, null
union all select '{a_tag}', (select min(id) from keap.tags where account_id = 'aaaaaaaa-0000-4000-8000-000000000000')::text, null
union all select '{a_order}', (select min(id) from keap.orders where account_id = 'aaaaaaaa-0000-4000-8000-000000000000')::text, null;
update ids set missing_val = foreign_val where missing_val is null;

-- ---- the calls ---------------------------------------------------------------------------------
-- fn: the function's signature (null for table statements); service: whether the service role is
-- held to the same rule (it is, for every function that takes an account and an id; the
-- functions that take only an id act on that id's own account, which the service role may).
-- Internal helpers that take ids are listed too, so granting one to people would be tested; they
-- are called only by the functions above, with ids read from the account's own rows.
create temp table calls (fn text, service boolean, sql text);
insert into calls values
  ('keapsync.pending_push(uuid,text,bigint)', true, $$select keapsync.pending_push('{A}', 'contact', {contact})::text$$),
  ('keapsync.pending_push(uuid,text,bigint)', true, $$select keapsync.pending_push('{A}', 'order', {order})::text$$),
  ('keapsync.pending_push(uuid,text,bigint)', true, $$select keapsync.pending_push('{A}', 'tag', {tag})::text$$),
  ('keapsync.pending_push(uuid,text,bigint)', true, $$select keapsync.pending_push('{A}', 'tag_category', {category})::text$$),
  ('keapsync.pending_push(uuid,text,bigint)', true, $$select keapsync.pending_push('{A}', 'subscription', {sub})::text$$),
  ('keapsync.pending_push(uuid,text,bigint)', false, $$select keapsync.pending_push('{B}', 'contact', {contact})::text$$),
  ('keapsync.pending_push(uuid,text,bigint)', true, $$select keapsync.pending_push('{A}', 'opportunity', {opp})::text$$),
  ('keapsync.pending_push(uuid,text,bigint)', true, $$select keapsync.pending_push('{A}', 'opportunity_stage', {stage})::text$$),
  ('keapsync.push_request(uuid,text,bigint)', true, $$select keapsync.push_request('{A}', 'opportunity', {opp})::text$$),
  ('keapsync.row_doc(uuid,text,bigint)', true, $$select keapsync.row_doc('{A}', 'opportunity', {opp})::text$$),
  ('keapsync.push_request(uuid,text,bigint)', true, $$select keapsync.push_request('{A}', 'contact', {contact})::text$$),
  ('keapsync.push_request(uuid,text,bigint)', true, $$select keapsync.push_request('{A}', 'order', {order})::text$$),
  ('keapsync.push_request(uuid,text,bigint)', true, $$select keapsync.push_request('{A}', 'note', {note})::text$$),
  ('keapsync.push_request(uuid,text,bigint)', false, $$select keapsync.push_request('{B}', 'contact', {contact})::text$$),
  ('keapsync.mark_pushed(uuid,text,bigint,jsonb,jsonb)', true,
   $$select keapsync.mark_pushed('{A}', 'contact', {contact}, '{"given_name": "x"}', '{"id": {keap}, "given_name": "x", "last_updated": "2026-02-01T00:00:00Z"}')$$),
  ('keapsync.mark_pushed(uuid,text,bigint,jsonb,jsonb)', true,
   $$select keapsync.mark_pushed('{A}', 'contact', {contact}, null, null)$$),
  ('keapsync.mark_pushed(uuid,text,bigint,jsonb,jsonb)', false,
   $$select keapsync.mark_pushed('{B}', 'contact', {contact}, '{}', '{"id": {keap}}')$$),
  ('keapsync.apply_keap_delete(uuid,text,bigint)', true, $$select keapsync.apply_keap_delete('{A}', 'contact', {keap})$$),
  ('keapsync.apply_keap_delete(uuid,text,bigint)', false, $$select keapsync.apply_keap_delete('{B}', 'contact', {keap})$$),
  ('keapsync.apply_keap_record(uuid,text,jsonb)', false,
   $$select keapsync.apply_keap_record('{B}', 'contact', '{"id": {keap}, "given_name": "x", "last_updated": "2027-01-01T00:00:00Z"}')$$),
  ('keapsync.apply_keap_records(uuid,text,jsonb)', false,
   $$select count(*) from keapsync.apply_keap_records('{B}', 'contact', '[{"id": {keap}, "given_name": "x", "last_updated": "2027-01-01T00:00:00Z"}]')$$),
  ('keapsync.apply_keap_batch(uuid,text,jsonb)', false,
   $$select keapsync.apply_keap_batch('{B}', 'contact', '[{"id": {keap}, "given_name": "x", "last_updated": "2027-01-01T00:00:00Z"}]')::text$$),
  ('keapsync.apply_keap_page(uuid,text,jsonb[])', false,
   $$select keapsync.apply_keap_page('{B}', 'contact', array['{"id": {keap}, "given_name": "x", "last_updated": "2027-01-01T00:00:00Z"}'::jsonb])::text$$),
  ('keapsync.enqueue_push(uuid,text,bigint,pg_lsn)', true, $$select keapsync.enqueue_push('{A}', 'contact', {contact}, null)::text$$),
  ('keapsync.enqueue_push(uuid,text,bigint,pg_lsn)', false, $$select keapsync.enqueue_push('{B}', 'contact', {contact}, null)::text$$),
  ('keapsync.enqueue_pushes(uuid[],text[],bigint[],pg_lsn[])', false,
   $$select keapsync.enqueue_pushes(array['{B}']::uuid[], array['contact'], array[{contact}]::bigint[], array[null]::pg_lsn[])$$),
  ('keapsync.resolve_conflict(bigint,text,jsonb)', false, $$select keapsync.resolve_conflict({conflict}, 'keap')::text$$),
  ('keapsync.resolve_conflict(bigint,text,jsonb)', false, $$select keapsync.resolve_conflict({conflict}, 'value', '"x"')::text$$),
  ('keapsync.resolve_conflicts_by_policy(uuid,text,text)', false, $$select keapsync.resolve_conflicts_by_policy('{B}', 'keap_wins')$$),
  ('keapsync.rollback_change(bigint)', false, $$select keapsync.rollback_change({history})$$),
  ('keapsync.prune(uuid,integer,boolean,timestamp with time zone)', false, $$select count(*) from keapsync.prune('{B}', 10, true)$$),
  ('keapsync.history_window_of_pruned(bigint)', false, $$select keapsync.history_window_of_pruned({history})$$),
  ('keapsync.retry_dead_letter(bigint)', false, $$select keapsync.retry_dead_letter({dead})::text$$),
  ('keapsync.discard_dead_letter(bigint)', false, $$select keapsync.discard_dead_letter({dead})::text$$),
  ('keapsync.set_dead_letter(bigint,text)', false, $$select keapsync.set_dead_letter({dead}, 'retry')::text$$),
  ('keapsync.is_member(uuid)', false, $$select keapsync.is_member('{B}')$$),
  ('keapsync.is_admin(uuid)', false, $$select keapsync.is_admin('{B}')$$),
  ('keapsync.require_admin(uuid)', false, $$select keapsync.require_admin('{B}')::text$$),
  ('keapsync.require_admin_or_hide(uuid,text)', false, $$select keapsync.require_admin_or_hide('{B}', 'thing')::text$$),
  ('keapsync.policy_for(uuid,text,text)', false, $$select keapsync.policy_for('{B}', 'contact', 'given_name')$$),
  ('keapsync.rebuild_kpi_summaries(uuid)', false, $$select keapsync.rebuild_kpi_summaries('{B}')::text$$),
  ('keapsync.signal(uuid,text,jsonb)', false, $$select keapsync.signal('{B}', 'data', '{}')::text$$),
  ('keapsync.row_doc(uuid,text,bigint)', true, $$select keapsync.row_doc('{A}', 'contact', {contact})::text$$),
  ('keapsync.write_row(uuid,text,bigint,bigint,jsonb,jsonb)', true,
   $$select keapsync.write_row('{A}', 'contact', {contact}, null, '{"given_name": "x"}', null)$$),
  ('keapsync.write_contact_tags(uuid,bigint,jsonb)', true, $$select keapsync.write_contact_tags('{A}', {contact}, '{}')::text$$),
  ('keapsync.write_order_children(uuid,bigint,jsonb)', true,
   $$select keapsync.write_order_children('{A}', {order}, '{"order_items": [], "payments": []}')::text$$),
  ('keapsync.account_can_sync(uuid)', false, $$select keapsync.account_can_sync('{B}')::text$$),
  -- B's Keap id with B's stored object, asked as A's: not among A's unchanged records.
  ('keapsync.unchanged_keap_ids(uuid,text,bigint[],text[])', true,
   $$select count(*) from keapsync.unchanged_keap_ids('{A}', 'contact', array[{keap}]::bigint[],
       array[(select c.keap_object::text from keap.contacts c where c.keap_id = 7001)])$$),
  -- internal, by id alone: only for ids their callers read from the account's own rows
  ('keapsync.row_doc(text,bigint)', false, $$select keapsync.row_doc('contact', {contact})::text$$),
  ('keapsync.keap_object_of(text,bigint)', false, $$select count(*) from keapsync.keap_object_of('contact', {contact})$$),
  -- tables: links from A's rows to B's, and B's rows by id
  (null, false, $$insert into keap.contact_tags (account_id, contact_id, tag_id) values ('{A}', {a_contact}, {tag})$$),
  (null, false, $$insert into keap.contact_tags (account_id, contact_id, tag_id) values ('{A}', {contact}, {a_tag})$$),
  (null, false, $$insert into keap.contact_tags (account_id, contact_id, tag_id) values ('{B}', {contact}, {tag})$$),
  (null, false, $$update keap.contact_tags set tag_id = {tag} where account_id = '{A}'$$),
  (null, false, $$update keap.contact_tags set contact_id = {contact} where account_id = '{A}'$$),
  (null, false, $$insert into keap.order_items (account_id, order_id, name) values ('{A}', {order}, 'x')$$),
  (null, false, $$update keap.order_items set order_id = {order} where account_id = '{A}'$$),
  (null, false, $$insert into keap.order_payments (account_id, order_id, amount) values ('{A}', {order}, 1)$$),
  (null, false, $$update keap.order_payments set order_id = {order} where account_id = '{A}'$$),
  (null, false, $$insert into keap.contacts (account_id, given_name) values ('{B}', 'x')$$),
  (null, false, $$insert into keap.notes (account_id, contact_keap_id, title) values ('{A}', {keap}, 'x')$$),
  (null, false, $$update keap.notes set contact_keap_id = {keap} where account_id = '{A}'$$),
  (null, false, $$select count(*) from keapsync.sync_state where object_type = 'contact' and local_id = {contact}$$),
  (null, false, $$select count(*) from keapsync.push_queue where local_id = {contact}$$),
  (null, false, $$select count(*) from keapsync.conflicts where id = {conflict}$$),
  (null, false, $$select count(*) from keapsync.change_history where id = {history}$$),
  (null, false, $$select count(*) from keapsync.dead_letters where id = {dead}$$),
  (null, false, $$select count(*) from keapsync.kpi_tag_counts where tag_id = {tag}$$),
  (null, false, $$select count(*) from keapsync.kpi_top_tags where tag_id = {tag}$$),
  (null, false, $$select count(*) from keapsync.kpi_pipeline_by_stage where account_id = '{B}'$$),
  (null, false, $$select count(*) from keapsync.kpi_opportunities_monthly where account_id = '{B}'$$),
  (null, false, $$insert into keap.opportunities (account_id, title) values ('{B}', 'x')$$),
  ('keapsync.apply_custom_field_model(uuid,text,jsonb)', false,
   $$select keapsync.apply_custom_field_model('{B}', 'contact', '[{"id": 5, "label": "x", "field_type": "Text"}]')::text$$),
  (null, false, $$select count(*) from keapsync.custom_fields where account_id = '{B}'$$),
  (null, false, $$select string_agg(secret, ',') from keap.contacts_custom where id = {contact}$$),
  (null, false, $$update keap.contacts_custom set secret = 'x' where id = {contact}$$),
  (null, false, $$select string_agg(deal_secret, ',') from keap.opportunities_custom where id = {opp}$$),
  (null, false, $$update keap.opportunities_custom set deal_secret = 'x' where id = {opp}$$);
-- Every synced table, by id: read, change, remove.
insert into calls
select null, false, format(q, t, ph)
  from (values ('contacts', '{contact}'), ('tags', '{tag}'), ('tag_categories', '{category}'), ('orders', '{order}'),
               ('order_items', '{item}'), ('order_payments', '{payment}'), ('subscriptions', '{sub}'),
               ('opportunities', '{opp}'), ('opportunity_stages', '{stage}'), ('notes', '{note}')) x(t, ph),
       unnest(array['select count(*) from keap.%I where id = %s', 'update keap.%I set id = id where id = %s',
                    'delete from keap.%I where id = %s']) q
union all
select null, false, format(q, ph)
  from (values ('contact_id = {contact}'), ('tag_id = {tag}')) x(ph),
       unnest(array['select count(*) from keap.contact_tags where %s', 'delete from keap.contact_tags where %s']) q;

create function pg_temp.fill_in(p_sql text, p_foreign boolean) returns text language plpgsql as $$
declare
  r record;
begin
  for r in select * from ids order by length(name) desc loop
    p_sql := replace(p_sql, r.name, case when p_foreign then r.foreign_val else r.missing_val end);
  end loop;
  return p_sql;
end;
$$;

-- Everything of B, as one digest (read as the superuser, past RLS).
create function pg_temp.b_state() returns text language plpgsql as $$
declare
  t record;
  d text;
  acc text := '';
begin
  for t in select c.table_schema, c.table_name, c.column_name from information_schema.columns c
             join information_schema.tables tb using (table_schema, table_name)
            where c.table_schema in ('keap', 'keapsync') and tb.table_type = 'BASE TABLE'
              and (c.column_name = 'account_id' or (c.table_name = 'accounts' and c.column_name = 'id'))
            order by 1, 2 loop
    execute format('select md5(coalesce(string_agg(x::text, %L order by x::text), %L)) from %I.%I x where %I = %L',
                   E'\n', '', t.table_schema, t.table_name, t.column_name, 'bbbbbbbb-0000-4000-8000-000000000000')
      into d;
    acc := acc || t.table_name || ':' || d || ' ';
  end loop;
  return md5(acc);
end;
$$;
create temp table b_before as select pg_temp.b_state() as digest;
grant select on ids, calls, b_before to public;

-- Act as someone, run one statement, and report what came back (the value, 'denied', or the
-- error with its numbers and account ids blurred, since they name the id given) and whether B's
-- data changed; the call and the digest run in one subtransaction that is then undone.
create function pg_temp.attempt(p_who text, p_sql text, out answer text, out b_changed boolean)
language plpgsql as $$
declare
  v text;
  n bigint;
  st text;
  msg text;
begin
  begin
    begin
      perform set_config('request.jwt.claims', case p_who
        when 'viewer_a' then '{"role": "authenticated", "sub": "a0000000-0000-4000-8000-00000000000a"}'
        when 'admin_a' then '{"role": "authenticated", "sub": "a0000000-0000-4000-8000-0000000000ad"}'
        else '' end, true);
      perform set_config('role', case p_who when 'service' then 'service_role' else 'authenticated' end, true);
      if p_sql like 'select%' then
        execute p_sql into v;
        answer := 'ok ' || coalesce(v, 'null');
      else
        execute p_sql;
        get diagnostics n = row_count;
        answer := 'rows ' || n;
      end if;
    exception
      when insufficient_privilege then answer := 'denied';
      when others then
        get stacked diagnostics st = returned_sqlstate, msg = message_text;
        answer := 'error ' || st || ': '
          || regexp_replace(regexp_replace(msg, '[0-9a-f]{8}-[0-9a-f-]{27}', 'U', 'g'), '[0-9]+', 'N', 'g');
    end;
    perform set_config('role', 'none', true);
    b_changed := pg_temp.b_state() <> (select digest from b_before);
    raise exception using errcode = 'KS001';  -- undo it all; PL/pgSQL variables keep their values
  exception when sqlstate 'KS001' then
    null;
  end;
end;
$$;

create temp table runs as
select c.fn, c.sql, w.who, f.answer, f.b_changed, m.answer as missing_answer
  from calls c
  cross join (values ('viewer_a'), ('admin_a'), ('service')) w(who)
  cross join lateral pg_temp.attempt(w.who, pg_temp.fill_in(c.sql, true)) f
  cross join lateral pg_temp.attempt(w.who, pg_temp.fill_in(c.sql, false)) m
 where w.who <> 'service' or c.service;

select plan(4 + (select count(*)::int from runs) * 3);

-- Every function of keapsync that takes an id (bigint) or an account (uuid) is in the matrix.
select set_eq(
  $$select p.oid::regprocedure::text from pg_proc p
     where p.pronamespace = 'keapsync'::regnamespace
       and exists (select 1 from unnest(p.proargtypes::oid[]) a where a in ('bigint'::regtype, 'bigint[]'::regtype,
                                                                           'uuid'::regtype, 'uuid[]'::regtype))$$,
  $$select distinct fn from calls where fn is not null$$,
  'the matrix calls every function that takes an id or an account');

-- Every reference from one synced row to another carries the account, so it cannot cross it.
select is_empty(
  $$select c.conrelid::regclass || ' ' || pg_get_constraintdef(c.oid) from pg_constraint c
     where c.contype = 'f' and c.connamespace in ('keap'::regnamespace, 'keapsync'::regnamespace)
       and c.confrelid not in ('keapsync.accounts'::regclass, 'keapsync.object_types'::regclass, 'auth.users'::regclass)
       and not exists (select 1 from unnest(c.conkey) k join pg_attribute a on a.attrelid = c.conrelid and a.attnum = k
                        where a.attname = 'account_id')
       -- rolled_back_by: written only by rollback_change, with an id of the same account
       and c.conname <> 'change_history_rolled_back_by_fkey'
       -- product_account_id: the item's account or null (order_items_product_account_check)
       and c.conname <> 'order_items_product_fkey'$$,
  'every foreign key between synced rows includes account_id');

-- The matrix reaches the functions: an admin of A gets answers, not only refusals.
select ok((select count(*) from runs where fn = 'keapsync.pending_push(uuid,text,bigint)' and who = 'admin_a'
            and answer like 'ok %') > 0, 'an admin of A gets answers from pending_push');
select ok((select count(*) from runs where fn = 'keapsync.resolve_conflict(bigint,text,jsonb)' and who = 'admin_a'
            and answer like 'error P0002%') > 0, 'an admin of A is told B''s conflict does not exist');

select is(answer, missing_answer, format('%s, given B''s ids, answers as for ids nobody has: %s', who, sql)) from runs order by sql, who;
select ok(answer not like '%b-secret%', format('%s reads nothing of B: %s', who, sql)) from runs order by sql, who;
select ok(not b_changed, format('%s changes nothing of B: %s', who, sql)) from runs order by sql, who;

select * from finish();
rollback;
