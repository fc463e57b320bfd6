-- The privilege audit: exactly what anon, authenticated and keap_analyst may execute and touch in
-- schemas keap and keapsync, compared with the lists below. A new function, table or grant that
-- one of these roles can use fails here until it is added on purpose; a function people may call
-- must also check that every id it takes belongs to the account (supabase/tests/tenant.test.sql).
begin;
create extension if not exists pgtap;
select plan(6);

create temp table people (role text);
insert into people values ('anon'), ('authenticated'), ('keap_analyst');

-- ---- functions ---------------------------------------------------------------------------------
create temp table allowed_functions (role text, fn text);
insert into allowed_functions
select 'authenticated', fn from unnest(array[
  -- called by RLS policies and the Realtime topic policy
  'keapsync.is_member(uuid)', 'keapsync.is_admin(uuid)', 'keapsync.my_accounts()', 'keapsync.my_admin_accounts()',
  'keapsync.topic_account(text)', 'keapsync.current_origin()', 'keapsync.require_admin(uuid)',
  -- what an admin does from the dashboard, the CLI or SQL (each checks the caller and the ids)
  'keapsync.resolve_conflict(bigint,text,jsonb)', 'keapsync.resolve_conflicts_by_policy(uuid,text,text)',
  'keapsync.rollback_change(bigint)', 'keapsync.retry_dead_letter(bigint)', 'keapsync.discard_dead_letter(bigint)',
  'keapsync.pending_push(uuid,text,bigint)',
  -- whether an account can sync now (the account state; false for accounts the caller cannot see)
  'keapsync.account_can_sync(uuid)',
  -- what the dashboard shows (each limited to the caller's accounts)
  'keapsync.my_stalls(interval,interval)', 'keapsync.history_window_of_pruned(bigint)',
  -- what keap.contacts_custom runs as its reader and writer (pure conversions of one value)
  'keapsync.custom_numeric(jsonb)', 'keapsync.custom_date(jsonb)', 'keapsync.custom_timestamptz(jsonb)',
  'keapsync.custom_text_array(jsonb)', 'keapsync.custom_sql_type(text)', 'keapsync.custom_content(text,jsonb)']) fn
union all
select 'keap_analyst', fn from unnest(array[
  'keapsync.is_member(uuid)', 'keapsync.is_admin(uuid)', 'keapsync.my_accounts()', 'keapsync.my_admin_accounts()',
  'keapsync.current_origin()',
  'keapsync.custom_numeric(jsonb)', 'keapsync.custom_date(jsonb)', 'keapsync.custom_timestamptz(jsonb)',
  'keapsync.custom_text_array(jsonb)']) fn;

select set_eq(
  $$select r.role, p.oid::regprocedure::text from pg_proc p cross join people r
     where p.pronamespace in ('keap'::regnamespace, 'keapsync'::regnamespace)
       and has_function_privilege(r.role, p.oid, 'execute')$$,
  $$select role, fn from allowed_functions$$,
  'people execute exactly the allowed functions (anon none)');
select is_empty(
  $$select p.oid::regprocedure::text from pg_proc p
     where p.pronamespace in ('keap'::regnamespace, 'keapsync'::regnamespace)
       and (p.proacl is null or exists (select 1 from aclexplode(p.proacl) a where a.grantee = 0))$$,
  'PUBLIC executes no function of keap or keapsync');

-- A function the migrating role creates from now on is open to the service role (the per-schema
-- default); PUBLIC's execute is revoked by each migration, and the two checks above hold it.
create function keapsync.privileges_probe() returns int language sql as 'select 1';
select ok(has_function_privilege('service_role', 'keapsync.privileges_probe()', 'execute'),
          'a new keapsync function is executable by the service role');
drop function keapsync.privileges_probe();

-- ---- tables, views and sequences ---------------------------------------------------------------
create temp table allowed_relations (role text, rel text, privs text);
insert into allowed_relations
select 'authenticated', r, 'SELECT' from unnest(array[
  'keapsync.accounts', 'keapsync.object_types', 'keapsync.hook_subscriptions', 'keapsync.webhook_inbox',
  'keapsync.sync_cursors', 'keapsync.sync_state', 'keapsync.conflicts', 'keapsync.change_history',
  'keapsync.dead_letters', 'keapsync.push_queue', 'keapsync.rate_budget_usage',
  'keapsync.kpi_contacts_by_week', 'keapsync.kpi_orders_by_month', 'keapsync.kpi_tag_counts',
  'keapsync.kpi_subscription_totals',
  'keapsync.sync_status', 'keapsync.kpi_contacts_weekly', 'keapsync.kpi_orders_monthly',
  'keapsync.kpi_subscriptions', 'keapsync.kpi_top_tags', 'keapsync.kpi_totals',
  'keapsync.sync_activity', 'keapsync.sync_activity_hourly', 'keapsync.account_state',
  'keapsync.kpi_pipeline_by_stage', 'keapsync.kpi_opportunities_monthly', 'keapsync.custom_fields']) r
union all
-- the custom-field views: read, and written by UPDATE only (each trigger writes its table as the caller)
select 'authenticated', r, 'SELECT,UPDATE' from unnest(array[
  'keap.contacts_custom', 'keap.companies_custom', 'keap.tasks_custom', 'keap.opportunities_custom',
  'keap.subscriptions_custom', 'keap.notes_custom', 'keap.orders_custom']) r
union all
select 'authenticated', r, 'DELETE,INSERT,SELECT,UPDATE' from unnest(array[
  'keapsync.members', 'keapsync.settings', 'keapsync.conflict_policies', 'keapsync.sync_directions',
  'keap.contacts', 'keap.tag_categories', 'keap.tags', 'keap.contact_tags', 'keap.orders', 'keap.order_items',
  'keap.order_payments', 'keap.subscriptions', 'keap.companies', 'keap.products', 'keap.tasks',
  'keap.opportunity_stages', 'keap.opportunities', 'keap.notes']) r
union all
select 'keap_analyst', r, 'SELECT' from unnest(array[
  'keap.contacts', 'keap.tag_categories', 'keap.tags', 'keap.contact_tags', 'keap.orders', 'keap.order_items',
  'keap.order_payments', 'keap.subscriptions', 'keap.companies', 'keap.products', 'keap.tasks',
  'keap.opportunity_stages', 'keap.opportunities', 'keap.notes', 'keapsync.object_types',
  'keapsync.kpi_pipeline_by_stage', 'keapsync.kpi_opportunities_monthly',
  'keapsync.kpi_contacts_by_week', 'keapsync.kpi_orders_by_month', 'keapsync.kpi_tag_counts',
  'keapsync.kpi_subscription_totals',
  'keapsync.sync_status', 'keapsync.kpi_contacts_weekly', 'keapsync.kpi_orders_monthly',
  'keapsync.kpi_subscriptions', 'keapsync.kpi_top_tags', 'keapsync.kpi_totals',
  'keapsync.custom_fields', 'keap.contacts_custom', 'keap.companies_custom', 'keap.tasks_custom',
  'keap.opportunities_custom', 'keap.subscriptions_custom', 'keap.notes_custom', 'keap.orders_custom']) r;

select set_eq(
  $$select p.role, c.oid::regclass::text, string_agg(pr, ',' order by pr)
      from pg_class c cross join people p
     cross join unnest(array['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) pr
     where c.relnamespace in ('keap'::regnamespace, 'keapsync'::regnamespace) and c.relkind in ('r', 'p', 'v', 'm', 'f')
       and has_table_privilege(p.role, c.oid, pr)
     group by 1, 2$$,
  $$select role, rel, privs from allowed_relations$$,
  'people hold exactly the allowed table privileges');

-- Column grants: token health without its ciphertext, the account's name and pause switch, and
-- the columns the status views read for analysts.
select set_eq(
  $$select a.grantee::regrole::text, c.oid::regclass::text, a.privilege_type, string_agg(att.attname, ',' order by att.attname)
      from pg_class c join pg_attribute att on att.attrelid = c.oid, aclexplode(att.attacl) a
     where c.relnamespace in ('keap'::regnamespace, 'keapsync'::regnamespace)
       and (a.grantee = 0 or a.grantee::regrole::text in (select role from people))
     group by 1, 2, 3$$,
  $$values ('authenticated', 'keapsync.accounts', 'UPDATE', 'name,paused'),
           ('authenticated', 'keapsync.oauth_tokens', 'SELECT',
            'access_expires_at,account_id,last_error,refresh_expires_at,refreshed_at,scope,updated_at'),
           ('keap_analyst', 'keapsync.accounts', 'SELECT', 'credential,id,name,needs_reauth,paused'),
           ('keap_analyst', 'keapsync.oauth_tokens', 'SELECT', 'access_expires_at,account_id,refresh_expires_at'),
           ('keap_analyst', 'keapsync.hook_subscriptions', 'SELECT', 'account_id,last_delivery_at,status'),
           ('keap_analyst', 'keapsync.webhook_inbox', 'SELECT', 'account_id,processed_at,received_at'),
           ('keap_analyst', 'keapsync.sync_cursors', 'SELECT',
            'account_id,finished_at,kind,object_type,rows_done,rows_total,updated_at'),
           ('keap_analyst', 'keapsync.conflicts', 'SELECT', 'account_id,status'),
           ('keap_analyst', 'keapsync.dead_letters', 'SELECT', 'account_id,status')$$,
  'people hold exactly the allowed column privileges');

-- Sequences: an admin inserting a synced row draws its id.
select set_eq(
  $$select p.role, c.oid::regclass::text from pg_class c cross join people p
     where c.relkind = 'S' and c.relnamespace in ('keap'::regnamespace, 'keapsync'::regnamespace)
       and has_sequence_privilege(p.role, c.oid, 'USAGE,SELECT,UPDATE')$$,
  $$select 'authenticated' as role, 'keap.' || t || '_id_seq' as seq from unnest(array['contacts', 'tag_categories', 'tags', 'orders',
                                                                        'order_items', 'order_payments', 'subscriptions', 'companies', 'products', 'tasks',
                                                                        'opportunity_stages', 'opportunities', 'notes']) t$$,
  'people use exactly the allowed sequences');

select * from finish();
rollback;
