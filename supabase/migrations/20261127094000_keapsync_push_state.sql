-- Push: the set form of enqueue_push. The replication consumer writes a batch of changed
-- records in one statement instead of one function call per record (it runs once per batch of
-- the logical replication stream, so its cost bounds how fast the slot is drained).
-- enqueue_push now delegates here, so the coalescing rule is written once.

create or replace function keapsync.enqueue_pushes(
  p_accounts uuid[], p_types text[], p_local_ids bigint[], p_lsns pg_lsn[])
returns integer
language sql volatile security definer set search_path = ''
as $$
  with c as (
    -- One row per record: ON CONFLICT may not touch a row twice in one statement.
    select a, t, l, max(n) as lsn
      from unnest(p_accounts, p_types, p_local_ids, p_lsns) as u(a, t, l, n)
     group by a, t, l
  ), ins as (
    insert into keapsync.push_queue as q (account_id, object_type, local_id, last_lsn)
    select a, t, l, lsn from c
    on conflict (account_id, object_type, local_id) do update
       set last_lsn = greatest(q.last_lsn, excluded.last_lsn),
           next_attempt_at = least(q.next_attempt_at, now())
    returning 1)
  select count(*)::integer from ins;
$$;

-- Record that a record changed at p_lsn. Idempotent; the earliest enqueue time is kept.
create or replace function keapsync.enqueue_push(p_account uuid, p_type text, p_local_id bigint, p_lsn pg_lsn)
returns void
language sql volatile security definer set search_path = ''
as $$
  select keapsync.enqueue_pushes(array[p_account], array[p_type], array[p_local_id], array[p_lsn]);
$$;

revoke execute on function keapsync.enqueue_pushes(uuid[], text[], bigint[], pg_lsn[]) from public;
grant execute on function keapsync.enqueue_pushes(uuid[], text[], bigint[], pg_lsn[]) to service_role;
