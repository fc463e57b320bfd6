-- Push: a hot record rests longer the more often it has changed. A record changed again while it
-- rests used to wait until it had been quiet for the settle time or for as long as its changes
-- spanned, whichever is longer; early in a burst the span is short, so one pause a little longer
-- than the settle time pushed it, and it was pushed again once the burst ended (about half the
-- records of a 2.5 s burst in BenchmarkCoalescing). Now it also waits the settle time once per
-- change seen: a record changed k times rests at least k settle times after its last change.
-- A single change still goes after the settle time, and no wait passes the longest settle
-- after the first change (the worker's claim says both).

alter table keapsync.push_queue add column changes integer not null default 1;

comment on column keapsync.push_queue.changes is
  'how many times the record was queued since its first change rested (one per enqueue batch): the push waits that many settle times after the latest';

-- As in 20261203210000_keapsync_push_settle.sql, counting the change.
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
           next_attempt_at = least(q.next_attempt_at, now()),
           last_enqueued_at = now(),
           changes = q.changes + 1
    returning 1)
  select count(*)::integer from ins;
$$;

revoke execute on function keapsync.enqueue_pushes(uuid[], text[], bigint[], pg_lsn[]) from public;
grant execute on function keapsync.enqueue_pushes(uuid[], text[], bigint[], pg_lsn[]) to service_role;
