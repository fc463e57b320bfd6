-- Who may execute keapsync's functions (issue #12). The security migration's
-- `alter default privileges in schema keapsync revoke execute on functions from public` did
-- nothing: PostgreSQL's EXECUTE for PUBLIC is a global default, and a per-schema entry can only
-- add to the global defaults, never take away from them (no pg_default_acl row resulted). So
-- every function created after it was executable by PUBLIC: rebuild_kpi_summaries (SHARE locks
-- on the data tables: a viewer or analyst holding it in an open transaction stalled sync for
-- every tenant), kpi_summaries, topic_account and the trigger functions.
--
-- 1. Every existing function: nobody but the service role and the explicit list below.
-- 2. Functions the migrating role creates from now on: no EXECUTE for PUBLIC (a global default
--    of that role: the only form PostgreSQL honours), EXECUTE for the service role in keapsync.
--    Each new function is still granted to people explicitly, and supabase/tests/privileges
--    holds the list of what anon, authenticated and keap_analyst may run.
-- Trigger functions need no EXECUTE for those who fire them (it is checked when the trigger is
-- created), and the security definer functions call the rest as their owner.

revoke execute on all functions in schema keap, keapsync from public, anon, authenticated, keap_analyst;
grant execute on all functions in schema keapsync to service_role;

-- People (Supabase users): what RLS policies and the Realtime policy call, and the actions of the
-- dashboard, the CLI and SQL, each of which checks that the caller administers the account.
grant execute on function
  keapsync.is_member(uuid), keapsync.is_admin(uuid), keapsync.require_admin(uuid),
  keapsync.my_accounts(), keapsync.my_admin_accounts(), keapsync.current_origin(),
  keapsync.topic_account(text),
  keapsync.resolve_conflict(bigint, text, jsonb), keapsync.resolve_conflicts_by_policy(uuid, text, text),
  keapsync.rollback_change(bigint), keapsync.retry_dead_letter(bigint), keapsync.discard_dead_letter(bigint),
  keapsync.pending_push(uuid, text, bigint)
  to authenticated;
-- Analysts: membership lookups and the origin marker, nothing that changes or locks anything.
grant execute on function
  keapsync.is_member(uuid), keapsync.is_admin(uuid), keapsync.my_accounts(), keapsync.my_admin_accounts(),
  keapsync.current_origin()
  to keap_analyst;

-- Not `alter default privileges revoke execute on functions from public` without a schema: that
-- would close every function the migrating role creates anywhere in the user's project, not only
-- keapsync's. Instead each migration revokes what it creates, and supabase/tests/privileges.test.sql
-- fails on any keap or keapsync function PUBLIC, anon, authenticated or keap_analyst may run
-- that is not on its allow-list.
alter default privileges in schema keapsync grant execute on functions to service_role;
