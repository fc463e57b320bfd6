-- Who sees and changes what. RLS is on for every table of both schemas:
--   service_role   everything (bypasses RLS)
--   authenticated  rows of the accounts they are a member of; admins also edit synced data and
--                  account settings; conflicts, rollback and dead letters only through functions
--   keap_analyst   reads every row of schema keap and what the status/KPI views need; nothing else
--   anon           nothing
-- Token ciphertext is readable by the service role only (column privileges).

do $role$
begin
  if not exists (select 1 from pg_roles where rolname = 'keap_analyst') then
    create role keap_analyst nologin;
  end if;
end
$role$;
comment on role keap_analyst is 'Grant to analysts'' logins: read-only access to keap.* and keapsync status/KPI views.';

revoke all on schema keap, keapsync from public;
grant usage on schema keap, keapsync to authenticated, service_role, keap_analyst;

revoke all on all tables in schema keap from public, anon, authenticated;
revoke all on all tables in schema keapsync from public, anon, authenticated;
grant all on all tables in schema keap to service_role;
grant all on all tables in schema keapsync to service_role;
grant usage, select on all sequences in schema keap to service_role, authenticated;
grant usage, select on all sequences in schema keapsync to service_role;

-- Functions: nothing for PUBLIC (PostgreSQL grants EXECUTE to PUBLIC by default).
revoke execute on all functions in schema keapsync from public;
alter default privileges in schema keapsync revoke execute on functions from public;
grant execute on all functions in schema keapsync to service_role;
grant execute on function
  keapsync.is_member(uuid), keapsync.is_admin(uuid), keapsync.require_admin(uuid),
  keapsync.my_accounts(), keapsync.my_admin_accounts(),
  keapsync.current_origin(),
  keapsync.resolve_conflict(bigint, text, jsonb), keapsync.resolve_conflicts_by_policy(uuid, text, text),
  keapsync.rollback_change(bigint), keapsync.retry_dead_letter(bigint), keapsync.discard_dead_letter(bigint),
  keapsync.pending_push(uuid, text, bigint)
  to authenticated;
grant execute on function keapsync.current_origin() to keap_analyst;

-- ---------------------------------------------------------------------------------------------
-- Synced data: members read, admins write, analysts read everything.
-- ---------------------------------------------------------------------------------------------
do $policies$
declare
  t text;
begin
  foreach t in array array['contacts', 'tag_categories', 'tags', 'contact_tags', 'orders', 'order_items',
                           'order_payments', 'subscriptions'] loop
    execute format('alter table keap.%I enable row level security', t);
    execute format('grant select, insert, update, delete on keap.%I to authenticated', t);
    execute format('grant select on keap.%I to keap_analyst', t);
    execute format('create policy members_read on keap.%I for select to authenticated
                      using (account_id = any ((select keapsync.my_accounts())::uuid[]))', t);
    execute format('create policy admins_insert on keap.%I for insert to authenticated
                      with check (account_id = any ((select keapsync.my_admin_accounts())::uuid[]))', t);
    execute format('create policy admins_update on keap.%I for update to authenticated
                      using (account_id = any ((select keapsync.my_admin_accounts())::uuid[]))
                      with check (account_id = any ((select keapsync.my_admin_accounts())::uuid[]))', t);
    execute format('create policy admins_delete on keap.%I for delete to authenticated
                      using (account_id = any ((select keapsync.my_admin_accounts())::uuid[]))', t);
    execute format('create policy analysts_read on keap.%I for select to keap_analyst using (true)', t);
  end loop;
end
$policies$;
grant execute on function keapsync.is_member(uuid), keapsync.is_admin(uuid),
  keapsync.my_accounts(), keapsync.my_admin_accounts() to keap_analyst;

-- ---------------------------------------------------------------------------------------------
-- Machinery: members read their accounts' rows; admins manage members and settings.
-- ---------------------------------------------------------------------------------------------
do $policies$
declare
  t text;
  acct text;
begin
  foreach t in array array['accounts', 'members', 'settings', 'conflict_policies', 'object_types',
                           'oauth_tokens', 'hook_subscriptions', 'webhook_inbox', 'sync_cursors',
                           'sync_state', 'conflicts', 'change_history', 'dead_letters'] loop
    execute format('alter table keapsync.%I enable row level security', t);
    acct := case t when 'accounts' then 'id' else 'account_id' end;
    if t = 'object_types' then
      execute 'create policy everyone_reads on keapsync.object_types for select to authenticated, keap_analyst using (true)';
    elsif t <> 'oauth_tokens' then
      execute format('create policy members_read on keapsync.%I for select to authenticated
                        using (%I = any ((select keapsync.my_accounts())::uuid[]))', t, acct);
    end if;
  end loop;
end
$policies$;

grant select on keapsync.accounts, keapsync.members, keapsync.settings, keapsync.conflict_policies,
  keapsync.object_types, keapsync.hook_subscriptions, keapsync.webhook_inbox, keapsync.sync_cursors,
  keapsync.sync_state, keapsync.conflicts, keapsync.change_history, keapsync.dead_letters
  to authenticated;

-- Admins manage their account: its name and pause switch, members, settings and policies.
grant update (name, paused) on keapsync.accounts to authenticated;
create policy admins_update on keapsync.accounts for update to authenticated
  using (id = any ((select keapsync.my_admin_accounts())::uuid[])) with check (id = any ((select keapsync.my_admin_accounts())::uuid[]));
do $policies$
declare
  t text;
begin
  foreach t in array array['members', 'settings', 'conflict_policies'] loop
    execute format('grant insert, update, delete on keapsync.%I to authenticated', t);
    execute format('create policy admins_insert on keapsync.%I for insert to authenticated
                      with check (account_id = any ((select keapsync.my_admin_accounts())::uuid[]))', t);
    execute format('create policy admins_update on keapsync.%I for update to authenticated
                      using (account_id = any ((select keapsync.my_admin_accounts())::uuid[])) with check (account_id = any ((select keapsync.my_admin_accounts())::uuid[]))', t);
    execute format('create policy admins_delete on keapsync.%I for delete to authenticated
                      using (account_id = any ((select keapsync.my_admin_accounts())::uuid[]))', t);
  end loop;
end
$policies$;

-- Tokens: expiry and health are visible to members; the ciphertext and key id to nobody but the
-- service role.
grant select (account_id, access_expires_at, refresh_expires_at, scope, refreshed_at, last_error, updated_at)
  on keapsync.oauth_tokens to authenticated;
create policy members_read_health on keapsync.oauth_tokens for select to authenticated
  using (account_id = any ((select keapsync.my_accounts())::uuid[]));

-- Analysts: only the columns the status and KPI views read.
grant select on keapsync.object_types to keap_analyst;
grant select (id, name, needs_reauth, paused) on keapsync.accounts to keap_analyst;
grant select (account_id, access_expires_at, refresh_expires_at) on keapsync.oauth_tokens to keap_analyst;
grant select (account_id, status, last_delivery_at) on keapsync.hook_subscriptions to keap_analyst;
grant select (account_id, received_at, processed_at) on keapsync.webhook_inbox to keap_analyst;
grant select (account_id, object_type, kind, rows_done, rows_total, finished_at, updated_at)
  on keapsync.sync_cursors to keap_analyst;
grant select (account_id, status) on keapsync.conflicts to keap_analyst;
grant select (account_id, status) on keapsync.dead_letters to keap_analyst;
do $policies$
declare
  t text;
begin
  foreach t in array array['accounts', 'oauth_tokens', 'hook_subscriptions', 'webhook_inbox', 'sync_cursors',
                           'conflicts', 'dead_letters'] loop
    execute format('create policy analysts_read on keapsync.%I for select to keap_analyst using (true)', t);
  end loop;
end
$policies$;

-- ---------------------------------------------------------------------------------------------
-- Realtime authorisation: a member may receive broadcasts on topic `keapsync:<account id>`.
-- ---------------------------------------------------------------------------------------------
create or replace function keapsync.topic_account(p_topic text) returns uuid
language plpgsql immutable set search_path = ''
as $$
begin
  if p_topic ~ '^keapsync:[0-9a-fA-F-]{36}$' then
    return substr(p_topic, 10)::uuid;
  end if;
  return null;
exception when invalid_text_representation then
  return null;
end;
$$;
grant execute on function keapsync.topic_account(text) to authenticated;

create policy keapsync_members_receive on realtime.messages for select to authenticated
  using (extension = 'broadcast'
         and (select keapsync.is_member(keapsync.topic_account(realtime.topic()))));

-- Tables and sequences added by later migrations get the same service-role grants.
alter default privileges in schema keap grant all on tables to service_role;
alter default privileges in schema keapsync grant all on tables to service_role;
alter default privileges in schema keap grant usage, select on sequences to service_role;
alter default privileges in schema keapsync grant usage, select on sequences to service_role;
