-- A conflict resolved with a value other than Keap's is work for the push path, even when the
-- local row does not change. Keeping the local value leaves the row as it was, so the
-- replication stream says nothing and the record was never queued: the kept value stayed here
-- and Keap kept its own (found by the dashboard's end-to-end test). The resolution now queues the
-- record itself, in the transaction that resolves it; a row change queues it again through the
-- stream, which coalesces.

create or replace function keapsync.tg_push_resolution() returns trigger
language plpgsql security definer set search_path = ''
as $$
begin
  perform keapsync.enqueue_push(new.account_id, new.object_type, new.local_id, null);
  return null;
end;
$$;

create trigger push_resolution after update of status on keapsync.conflicts
  for each row
  when (old.status = 'open' and new.status = 'resolved' and new.resolution in ('local', 'value')
        and new.resolved_value is distinct from new.keap_value)
  execute function keapsync.tg_push_resolution();
