-- Push: hot rows coalesce. A record changed again while it rests waits until it has been quiet
-- for the settle time (bounded by the push worker's longest settle, counted from its first
-- change), so a burst of edits to one record becomes one write while a single edit still goes
-- after the settle time. last_enqueued_at is when its latest change was recorded.

alter table keapsync.push_queue add column if not exists last_enqueued_at timestamptz not null default now();

comment on column keapsync.push_queue.last_enqueued_at is
  'when the latest change to the record was queued: the push waits until it has been quiet for the settle time';

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
           last_enqueued_at = now()
    returning 1)
  select count(*)::integer from ins;
$$;

revoke execute on function keapsync.enqueue_pushes(uuid[], text[], bigint[], pg_lsn[]) from public;
grant execute on function keapsync.enqueue_pushes(uuid[], text[], bigint[], pg_lsn[]) to service_role;
