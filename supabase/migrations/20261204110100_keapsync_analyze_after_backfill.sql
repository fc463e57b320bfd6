-- A backfill fills keapsync.sync_state and the type's table with an account's records in
-- minutes; autovacuum analyzes them a minute or more later. Until then the planner has no
-- statistics and takes equality on account_id and on object_type for 0.5 % each, so it expects
-- an account's sync state to be a row or two: it joined the push queue to keapsync.sync_state by
-- scanning the account's whole sync state for every queued row. A bulk edit of 2,000 contacts
-- pushed right after their backfill spent 14 s of database time in the push's pre-read alone
-- (TestBulkUpdate). So a backfill analyzes what it filled when a type is done.
--
-- Security definer: ANALYZE takes the table's owner, and keapsync_sidecar owns nothing. The
-- table's name comes from keapsync.object_types, never from the caller, and reaches the
-- statement through format()'s %I.
create function keapsync.analyze_synced(p_object_type text) returns void
language plpgsql security definer set search_path = ''
as $$
declare
  t text;
begin
  select table_name into t from keapsync.object_types where object_type = p_object_type;
  if t is null then
    raise exception 'keapsync.analyze_synced: no object type %', p_object_type using errcode = '22023';
  end if;
  execute pg_catalog.format('analyze keap.%I', t);
  analyze keapsync.sync_state;
end;
$$;
revoke execute on function keapsync.analyze_synced(text) from public;
grant execute on function keapsync.analyze_synced(text) to keapsync_sidecar, service_role;
