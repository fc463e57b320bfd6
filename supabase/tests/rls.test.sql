-- The RLS matrix: anon, a viewer of account A, a viewer of B, an admin of A, an analyst and the
-- service role, against every table of schemas keap and keapsync, for select, insert, update and
-- delete; plus token ciphertext, the admin-only functions and the Realtime topic policy.
begin;
create extension if not exists pgtap;

-- ---- fixtures: one of everything in accounts A and B -------------------------------------------
insert into auth.users (id, email) values
  ('a0000000-0000-4000-8000-00000000000a', 'viewer-a@example.com'),
  ('a0000000-0000-4000-8000-0000000000ad', 'admin-a@example.com'),
  ('b0000000-0000-4000-8000-00000000000b', 'viewer-b@example.com');
insert into keapsync.accounts (id, name) values
  ('aaaaaaaa-0000-4000-8000-000000000000', 'A'), ('bbbbbbbb-0000-4000-8000-000000000000', 'B'),
  ('cccccccc-0000-4000-8000-000000000000', 'C without members');
insert into keapsync.members (account_id, user_id, role) values
  ('aaaaaaaa-0000-4000-8000-000000000000', 'a0000000-0000-4000-8000-00000000000a', 'viewer'),
  ('aaaaaaaa-0000-4000-8000-000000000000', 'a0000000-0000-4000-8000-0000000000ad', 'admin'),
  ('bbbbbbbb-0000-4000-8000-000000000000', 'b0000000-0000-4000-8000-00000000000b', 'viewer');

create temp table acct (name text, id uuid);
insert into acct values ('A', 'aaaaaaaa-0000-4000-8000-000000000000'), ('B', 'bbbbbbbb-0000-4000-8000-000000000000');

insert into keapsync.settings (account_id) select id from acct;
insert into keapsync.conflict_policies (account_id, object_type, policy) select id, 'contact', 'manual' from acct;
insert into keapsync.oauth_tokens (account_id, key_id, ciphertext) select id, 'k1', '\x00' from acct;
insert into keapsync.hook_subscriptions (account_id, hook_key, event_key, hook_url) select id, 'h' || name, 'contact.add', 'https://x' from acct;
insert into keapsync.webhook_inbox (account_id, event_key, object_type, object_ids, payload) select id, 'contact.add', 'contact', '{1}', '{}' from acct;
insert into keapsync.sync_cursors (account_id, object_type, kind) select id, 'contact', 'backfill' from acct;
insert into keapsync.dead_letters (account_id, source, object_type, error) select id, 'push', 'contact', 'boom' from acct;
insert into keapsync.oauth_states (state, redirect_uri) values ('s1', 'https://x');
insert into keapsync.oauth_links (link_hash, expires_at) values (sha256('l1'), now() + interval '1 minute');
insert into keapsync.hook_endpoints (account_id) select id from acct;
insert into keapsync.push_queue (account_id, object_type, local_id) select id, 'contact', -1 from acct;
insert into keapsync.rate_budget_members (budget_key, member_id) values ('k', 'm1');
insert into keapsync.retention (account_id) select id from acct;
insert into keapsync.slot_progress (slot_name, advanced_at, observed_at) values ('s1', now(), now());
insert into keapsync.notifications (key, message) values ('k1', 'm');
insert into keapsync.v2_agreement (account_id, object_type) select id, 'note' from acct;
insert into keapsync.rate_budget_usage (account_id, per_day, day_available) select id, 250000, 240000 from acct;
insert into keapsync.custom_fields (account_id, object_type, keap_id, label, field_type) select id, 'contact', 1, 'Seats', 'WholeNumber' from acct;
select keapsync.apply_keap_record(id, 'contact', '{"id": 1, "given_name": "K", "tag_ids": [5], "last_updated": "2026-01-01T00:00:00Z"}') from acct;
select keapsync.apply_keap_record(id, 'tag_category', '{"id": 1, "name": "C"}') from acct;
select keapsync.apply_keap_record(id, 'order', '{"id": 1, "title": "O", "modification_date": "2026-01-01T00:00:00Z"}') from acct;
select keapsync.apply_keap_record(id, 'subscription', '{"id": 1, "active": true}') from acct;
select keapsync.apply_keap_record(id, 'task', '{"id": "1", "title": "T", "modification_time": "2026-01-01T00:00:00Z"}') from acct;
select keapsync.apply_keap_record(id, 'product', '{"id": "1", "name": "P", "update_time": "2026-01-01T00:00:00Z"}') from acct;
select keapsync.apply_keap_record(id, 'company', '{"id": "1", "company_name": "Co", "update_time": "2026-01-01T00:00:00Z"}') from acct;
select keapsync.apply_keap_record(id, 'opportunity_stage', '{"id": "1", "name": "S", "updated_time": "2026-01-01T00:00:00Z"}') from acct;
select keapsync.apply_keap_record(id, 'opportunity', '{"id": "1", "opportunity_title": "Op", "stage": {"id": "1"}, "contact": {"id": "1"}, "last_updated_time": "2026-01-01T00:00:00Z"}') from acct;
select keapsync.apply_keap_record(id, 'note', '{"id": 1, "title": "N", "contact_id": 1, "last_updated": "2026-01-01T00:00:00Z"}') from acct;
insert into keap.order_items (account_id, order_id, keap_id, name) select account_id, id, 1, 'I' from keap.orders;
insert into keap.order_payments (account_id, order_id, keap_id, amount) select account_id, id, 1, 1 from keap.orders;
update keap.contacts set job_title = 'local edit';  -- history rows of origin local, and a conflict:
select keapsync.apply_keap_record(id, 'contact', '{"id": 1, "given_name": "K", "job_title": "keap edit", "last_updated": "2026-01-02T00:00:00Z"}') from acct;

-- ---- the matrix --------------------------------------------------------------------------------
-- For each table: a statement per operation against account A's rows (insert makes a new one;
-- object_types, shared by all accounts, is updated and deleted with a filter that matches nothing).
create temp table matrix (schema_name text, tbl text, ins text, upd text);
insert into matrix values
  ('keap', 'contacts', $$insert into keap.contacts (account_id, given_name) values ('aaaaaaaa-0000-4000-8000-000000000000', 'n')$$, 'given_name'),
  ('keap', 'tag_categories', $$insert into keap.tag_categories (account_id, name) values ('aaaaaaaa-0000-4000-8000-000000000000', 'n')$$, 'name'),
  ('keap', 'tags', $$insert into keap.tags (account_id, name) values ('aaaaaaaa-0000-4000-8000-000000000000', 'n')$$, 'name'),
  ('keap', 'contact_tags', $$insert into keap.contact_tags (account_id, contact_id, tag_id) select 'aaaaaaaa-0000-4000-8000-000000000000', c.id, t.id from keap.contacts c, keap.tags t where false$$, 'date_applied'),
  ('keap', 'orders', $$insert into keap.orders (account_id, title) values ('aaaaaaaa-0000-4000-8000-000000000000', 'n')$$, 'title'),
  ('keap', 'order_items', $$insert into keap.order_items (account_id, order_id, name) values ('aaaaaaaa-0000-4000-8000-000000000000', (select min(id) from keap.orders), 'n')$$, 'name'),
  ('keap', 'order_payments', $$insert into keap.order_payments (account_id, order_id, amount) values ('aaaaaaaa-0000-4000-8000-000000000000', (select min(id) from keap.orders), 1)$$, 'amount'),
  ('keap', 'companies', $$insert into keap.companies (account_id, company_name) values ('aaaaaaaa-0000-4000-8000-000000000000', 'n')$$, 'company_name'),
  ('keap', 'products', $$insert into keap.products (account_id, name) values ('aaaaaaaa-0000-4000-8000-000000000000', 'n')$$, 'name'),
  ('keap', 'notes', $$insert into keap.notes (account_id, title) values ('aaaaaaaa-0000-4000-8000-000000000000', 'n')$$, 'title'),
  ('keap', 'tasks', $$insert into keap.tasks (account_id, title) values ('aaaaaaaa-0000-4000-8000-000000000000', 'n')$$, 'title'),
  ('keap', 'opportunity_stages', $$insert into keap.opportunity_stages (account_id, name) values ('aaaaaaaa-0000-4000-8000-000000000000', 'n')$$, 'name'),
  ('keap', 'opportunities', $$insert into keap.opportunities (account_id, title) values ('aaaaaaaa-0000-4000-8000-000000000000', 'n')$$, 'title'),
  ('keap', 'subscriptions', $$insert into keap.subscriptions (account_id, active) values ('aaaaaaaa-0000-4000-8000-000000000000', true)$$, 'active'),
  ('keapsync', 'accounts', $$insert into keapsync.accounts (name) values ('n')$$, 'name'),
  ('keapsync', 'members', $$insert into keapsync.members (account_id, user_id) values ('aaaaaaaa-0000-4000-8000-000000000000', 'b0000000-0000-4000-8000-00000000000b')$$, 'role'),
  ('keapsync', 'settings', $$insert into keapsync.settings (account_id) values ('aaaaaaaa-0000-4000-8000-000000000000') on conflict (account_id) do update set propagate_deletes = true$$, 'propagate_deletes'),
  ('keapsync', 'sync_directions', $$insert into keapsync.sync_directions (account_id, object_type) values ('aaaaaaaa-0000-4000-8000-000000000000', 'order') on conflict (account_id, object_type) do update set direction = 'both'$$, 'direction'),
  ('keapsync', 'conflict_policies', $$insert into keapsync.conflict_policies (account_id, object_type, field, policy) values ('aaaaaaaa-0000-4000-8000-000000000000', 'order', '*', 'keap_wins')$$, 'policy'),
  ('keapsync', 'object_types', $$insert into keapsync.object_types values ('x', 'x', '{}', '{}', null)$$, 'map_column'),
  ('keapsync', 'oauth_tokens', $$insert into keapsync.oauth_tokens (account_id, key_id, ciphertext) values ('aaaaaaaa-0000-4000-8000-000000000000', 'k', '\x01') on conflict (account_id) do update set key_id = 'k2'$$, 'scope'),
  ('keapsync', 'hook_subscriptions', $$insert into keapsync.hook_subscriptions (account_id, hook_key, event_key, hook_url) values ('aaaaaaaa-0000-4000-8000-000000000000', 'new', 'contact.edit', 'https://x')$$, 'status'),
  ('keapsync', 'webhook_inbox', $$insert into keapsync.webhook_inbox (account_id, event_key, object_type, object_ids, payload) values ('aaaaaaaa-0000-4000-8000-000000000000', 'contact.add', 'contact', '{2}', '{}')$$, 'attempts'),
  ('keapsync', 'sync_cursors', $$insert into keapsync.sync_cursors (account_id, object_type, kind) values ('aaaaaaaa-0000-4000-8000-000000000000', 'order', 'backfill')$$, 'rows_done'),
  ('keapsync', 'sync_state', $$insert into keapsync.sync_state (account_id, object_type, local_id) values ('aaaaaaaa-0000-4000-8000-000000000000', 'order', -1)$$, 'last_applied_at'),
  ('keapsync', 'conflicts', $$insert into keapsync.conflicts (account_id, object_type, local_id, field, policy) values ('aaaaaaaa-0000-4000-8000-000000000000', 'contact', -1, 'f', 'manual')$$, 'status'),
  ('keapsync', 'change_history', $$insert into keapsync.change_history (account_id, table_name, row_id, op, origin, changed) values ('aaaaaaaa-0000-4000-8000-000000000000', 'contacts', -1, 'update', 'local', '{}')$$, 'actor'),
  ('keapsync', 'hook_endpoints', $$insert into keapsync.hook_endpoints (account_id) values ('cccccccc-0000-4000-8000-000000000000')$$, 'path_token'),
  ('keapsync', 'oauth_states', $$insert into keapsync.oauth_states (state, redirect_uri) values ('s2', 'https://x')$$, 'redirect_uri'),
  ('keapsync', 'oauth_links', $$insert into keapsync.oauth_links (link_hash, expires_at) values (sha256('l2'), now() + interval '1 minute')$$, 'expires_at'),
  ('keapsync', 'retention', $$insert into keapsync.retention (account_id) values ('cccccccc-0000-4000-8000-000000000000')$$, 'history_days'),
  ('keapsync', 'slot_progress', $$insert into keapsync.slot_progress (slot_name, advanced_at, observed_at) values ('s2', now(), now())$$, 'observed_at'),
  ('keapsync', 'notifications', $$insert into keapsync.notifications (key, message) values ('k2', 'm')$$, 'message'),
  ('keapsync', 'v2_agreement', $$insert into keapsync.v2_agreement (account_id, object_type) values ('aaaaaaaa-0000-4000-8000-000000000000', 'order')$$, 'agreed'),
  ('keapsync', 'rate_budget_members', $$insert into keapsync.rate_budget_members (budget_key, member_id) values ('k', 'm2')$$, 'heartbeat_at'),
  ('keapsync', 'push_queue', $$insert into keapsync.push_queue (account_id, object_type, local_id) values ('aaaaaaaa-0000-4000-8000-000000000000', 'order', -5)$$, 'attempts'),
  ('keapsync', 'dead_letters', $$insert into keapsync.dead_letters (account_id, source, object_type, error) values ('aaaaaaaa-0000-4000-8000-000000000000', 'push', 'contact', 'x')$$, 'attempts'),
  ('keapsync', 'kpi_contacts_by_week', $$insert into keapsync.kpi_contacts_by_week values ('aaaaaaaa-0000-4000-8000-000000000000', '2000-01-03', 1)$$, 'contacts'),
  ('keapsync', 'kpi_orders_by_month', $$insert into keapsync.kpi_orders_by_month values ('aaaaaaaa-0000-4000-8000-000000000000', '2000-01-01', 1, 0, 0)$$, 'orders'),
  ('keapsync', 'kpi_tag_counts', $$insert into keapsync.kpi_tag_counts values ('aaaaaaaa-0000-4000-8000-000000000000', -1, 1)$$, 'contacts'),
  ('keapsync', 'rate_budget_usage', $$insert into keapsync.rate_budget_usage (account_id) values ('cccccccc-0000-4000-8000-000000000000')$$, 'per_day'),
  ('keapsync', 'kpi_subscription_totals', $$insert into keapsync.kpi_subscription_totals values ('cccccccc-0000-4000-8000-000000000000', 1, 1, 0)$$, 'active'),
  ('keapsync', 'custom_fields', $$insert into keapsync.custom_fields (account_id, object_type, keap_id, label, field_type) values ('aaaaaaaa-0000-4000-8000-000000000000', 'contact', 99, 'n', 'Text')$$, 'label'),
  ('keapsync', 'sync_activity', $$insert into keapsync.sync_activity values ('aaaaaaaa-0000-4000-8000-000000000000', '2000-01-01', 'in', 1, '2000-01-01')$$, 'changes');
-- contact_tags' insert needs a row that does not exist yet: a new tag.
update matrix set ins = $$insert into keap.contact_tags (account_id, contact_id, tag_id) select 'aaaaaaaa-0000-4000-8000-000000000000', (select min(id) from keap.contacts where account_id = 'aaaaaaaa-0000-4000-8000-000000000000'), (select min(id) from keap.tags where account_id = 'aaaaaaaa-0000-4000-8000-000000000000' and keap_id is null)$$
 where tbl = 'contact_tags';
insert into keap.tags (account_id, name) select id, 'free' from acct;

-- Every table of both schemas is in the matrix (a new table must be added here).
select plan(1 + (select count(*)::int * 6 * 4 from matrix) + 9);
select set_eq($$select table_schema || '.' || table_name from information_schema.tables
                 where table_schema in ('keap', 'keapsync') and table_type = 'BASE TABLE'$$,
              $$select schema_name || '.' || tbl from matrix$$, 'the matrix covers every table');

create temp table counts as
select m.schema_name, m.tbl, 0::bigint as total, 0::bigint as a_rows, 0::bigint as b_rows from matrix m;
do $$
declare m record; acc text;
begin
  for m in select * from matrix loop
    acc := case when m.tbl = 'accounts' then 'id' when m.tbl in ('object_types', 'oauth_states', 'oauth_links', 'rate_budget_members', 'slot_progress', 'notifications') then null
                else 'account_id' end;
    execute format('update counts set total = (select count(*) from %I.%I), a_rows = (select count(*) from %I.%I where %s), '
                   'b_rows = (select count(*) from %I.%I where %s) where tbl = %L',
                   m.schema_name, m.tbl, m.schema_name, m.tbl,
                   case when acc is null then 'true' else format('%I = %L', acc, 'aaaaaaaa-0000-4000-8000-000000000000') end,
                   m.schema_name, m.tbl,
                   case when acc is null then 'true' else format('%I = %L', acc, 'bbbbbbbb-0000-4000-8000-000000000000') end, m.tbl);
  end loop;
end $$;
grant select on counts, matrix to public;

-- Act as someone, run one statement, report the row count or 'denied', and undo everything.
create function pg_temp.attempt(p_who text, p_sql text) returns text language plpgsql as $$
declare
  n bigint;
begin
  begin
    perform set_config('request.jwt.claims', case p_who
      when 'anon' then '{"role": "anon"}'
      when 'viewer_a' then '{"role": "authenticated", "sub": "a0000000-0000-4000-8000-00000000000a"}'
      when 'admin_a' then '{"role": "authenticated", "sub": "a0000000-0000-4000-8000-0000000000ad"}'
      when 'viewer_b' then '{"role": "authenticated", "sub": "b0000000-0000-4000-8000-00000000000b"}'
      when 'service' then '{"role": "service_role"}'
      else '' end, true);
    perform set_config('role', case p_who when 'anon' then 'anon' when 'analyst' then 'keap_analyst'
                                          when 'service' then 'service_role' else 'authenticated' end, true);
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
    when others then return 'error ' || sqlstate || ': ' || sqlerrm;
  end;
end;
$$;

create function pg_temp.expect(p_who text, p_schema text, p_tbl text, p_op text) returns text language sql as $$
  with c as (select * from counts where tbl = p_tbl),
       k as (select
         p_schema = 'keap' as data,
         p_tbl in ('members', 'settings', 'conflict_policies', 'sync_directions') as managed,
         p_tbl in ('accounts', 'oauth_tokens', 'hook_subscriptions', 'webhook_inbox', 'sync_cursors',
                   'conflicts', 'dead_letters', 'object_types', 'custom_fields')
           or p_tbl like 'kpi\_%' as analyst_reads)
  select case
    when p_who = 'anon' then 'denied'
    -- service-only tables: no account, no grants but the service role's
    when p_tbl in ('oauth_states', 'oauth_links', 'rate_budget_members', 'hook_endpoints', 'retention', 'slot_progress', 'notifications',
                   'v2_agreement') then case
      when p_who <> 'service' then 'denied' when p_op = 'select' then c.total::text else '1' end
    when p_who = 'service' then case p_op when 'select' then c.total::text when 'insert' then '1'
                                          else (case when p_tbl = 'object_types' then 0 else c.a_rows end)::text end
    when p_who = 'analyst' then case when p_op = 'select' and (k.data or k.analyst_reads) then c.total::text else 'denied' end
    -- authenticated from here on
    when p_op = 'select' then case when p_tbl = 'object_types' then c.total
                                   when p_who = 'viewer_b' then c.b_rows else c.a_rows end::text
    when p_tbl = 'accounts' and p_op = 'update' then case when p_who = 'admin_a' then '1' else '0' end
    when not (k.data or k.managed) then 'denied'
    when p_op = 'insert' then case when p_who = 'admin_a' then '1' else 'denied' end
    else case when p_who = 'admin_a' then c.a_rows::text else '0' end
  end
  from c, k;
$$;

select is(pg_temp.attempt(w.who, case op
            when 'select' then format('select count(*) from %I.%I', m.schema_name, m.tbl)
            when 'insert' then m.ins
            when 'update' then format('update %I.%I set %I = %I where %s', m.schema_name, m.tbl, m.upd, m.upd,
                                      case m.tbl when 'accounts' then $$id = 'aaaaaaaa-0000-4000-8000-000000000000'$$
                                                 when 'object_types' then 'false'
                                                 when 'oauth_states' then 'true' when 'oauth_links' then 'true' when 'rate_budget_members' then 'true' when 'slot_progress' then 'true' when 'notifications' then 'true'
                                                 else $$account_id = 'aaaaaaaa-0000-4000-8000-000000000000'$$ end)
            else format('delete from %I.%I where %s', m.schema_name, m.tbl,
                        case m.tbl when 'accounts' then $$id = 'aaaaaaaa-0000-4000-8000-000000000000'$$
                                   when 'object_types' then 'false'
                                   when 'oauth_states' then 'true' when 'oauth_links' then 'true' when 'rate_budget_members' then 'true' when 'slot_progress' then 'true' when 'notifications' then 'true'
                                   else $$account_id = 'aaaaaaaa-0000-4000-8000-000000000000'$$ end) end),
          pg_temp.expect(w.who, m.schema_name, m.tbl, op),
          format('%s %s %s.%s', w.who, op, m.schema_name, m.tbl))
  from matrix m
  cross join (values ('anon'), ('viewer_a'), ('viewer_b'), ('admin_a'), ('analyst'), ('service')) w(who)
  cross join unnest(array['select', 'insert', 'update', 'delete']) op
 order by m.schema_name, m.tbl, w.who, op;

-- ---- beyond the matrix -------------------------------------------------------------------------
select is(pg_temp.attempt('admin_a', 'select count(ciphertext) from keapsync.oauth_tokens'), 'denied',
          'an admin cannot read token ciphertext');
select is(pg_temp.attempt('analyst', 'select count(ciphertext) from keapsync.oauth_tokens'), 'denied',
          'an analyst cannot read token ciphertext');
select is(pg_temp.attempt('service', 'select count(ciphertext) from keapsync.oauth_tokens'), '2',
          'the service role can');
select is(pg_temp.attempt('viewer_a', $$select count(*) from keapsync.resolve_conflict((select min(id) from keapsync.conflicts where account_id = 'aaaaaaaa-0000-4000-8000-000000000000'), 'keap')$$),
          'denied', 'a viewer may not resolve a conflict');
select is(pg_temp.attempt('admin_a', $$select count(*) from keapsync.resolve_conflict((select min(id) from keapsync.conflicts where account_id = 'aaaaaaaa-0000-4000-8000-000000000000' and status = 'open'), 'keap')$$),
          '1', 'an admin may');
create temp table b_change as select max(id) as id from keapsync.change_history where account_id = 'bbbbbbbb-0000-4000-8000-000000000000';
grant select on b_change to public;
select is(pg_temp.attempt('admin_a', $$select count(*) from keapsync.rollback_change((select id from b_change))$$),
          'error P0002: keapsync: no change ' || (select id from b_change),
          'an admin of A may not roll back B''s changes, and is told they do not exist');
select is(pg_temp.attempt('viewer_a', $$select count(*) from realtime.messages where realtime.topic() is null$$), '0',
          'realtime messages are readable only on an authorised topic');
select is(pg_temp.attempt('analyst', $$select count(*) from keapsync.sync_status$$), '3',
          'analysts read the status view');

select is(pg_temp.attempt('viewer_b', $$select count(*) from keapsync.kpi_totals$$), '1',
          'a member reads the KPI totals of their own account only');

select * from finish();
rollback;
