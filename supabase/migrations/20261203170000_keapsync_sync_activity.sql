-- Sync activity per hour: how many changes came in from Keap and went out to Keap, per account,
-- kept by triggers so the dashboard's 48-hour chart and "last sync" read a hundred small rows
-- instead of counting change_history (a backfill writes a million history rows in an hour).
--
--   in:  change_history rows of origin 'keap' (every write the sync applied on Keap's behalf);
--   out: sync_state rows whose last_pushed_at moved (mark_pushed: Keap accepted a create or an
--        update), and sync_state rows of a local delete that go away (the delete reached Keap).
--
-- The buckets are merged like the KPI summaries (20261127095000_kpi_summaries.sql): a bucket is
-- not a unique row; a merge deletes the rows of its bucket it can lock (SKIP LOCKED) and inserts
-- their sum plus its delta, so parallel appliers and push workers never wait on one another.
-- Readers sum per bucket (keapsync.sync_activity_hourly). Hours are cut in UTC whatever the
-- writer's TimeZone. No foreign key to accounts, for the reason the KPI summaries give.

create table keapsync.sync_activity (
  account_id uuid not null,
  hour timestamptz not null,              -- the UTC hour the changes happened in
  direction text not null check (direction in ('in', 'out')),
  changes bigint not null,
  last_at timestamptz not null            -- the latest change of the bucket
);
create index sync_activity_idx on keapsync.sync_activity (account_id, direction, hour);

alter table keapsync.sync_activity enable row level security;
-- Members read their accounts' activity; like change_history, it is machinery, not analyst data.
revoke all on keapsync.sync_activity from public, anon, authenticated, keap_analyst;
grant select on keapsync.sync_activity to authenticated;
grant all on keapsync.sync_activity to service_role;
create policy members_read on keapsync.sync_activity for select to authenticated
  using (account_id = any ((select keapsync.my_accounts())::uuid[]));

create view keapsync.sync_activity_hourly with (security_invoker = true) as
select account_id, hour, direction, sum(changes)::bigint as changes, max(last_at) as last_at
  from keapsync.sync_activity
 group by 1, 2, 3;
grant select on keapsync.sync_activity_hourly to authenticated, service_role;

-- Merge deltas (parallel arrays, one element per account and hour) into one direction's buckets.
-- Only the triggers below call it.
create or replace function keapsync.merge_sync_activity(
  p_direction text, p_accounts uuid[], p_hours timestamptz[], p_changes bigint[], p_last timestamptz[])
returns void
language sql volatile security definer set search_path = ''
as $$
  with delta as (
    select d.account_id, d.hour, d.changes, d.last_at
      from unnest(p_accounts, p_hours, p_changes, p_last) d(account_id, hour, changes, last_at)),
  merged as (
    delete from keapsync.sync_activity s
     where s.ctid = any (array(select s.ctid from keapsync.sync_activity s
                                 join delta d on d.account_id = s.account_id and d.hour = s.hour
                                where s.direction = p_direction
                                  for update of s skip locked))
    returning s.account_id, s.hour, s.changes, s.last_at)
  insert into keapsync.sync_activity (account_id, hour, direction, changes, last_at)
  select account_id, hour, p_direction, sum(changes), max(last_at)
    from (table delta union all table merged) m
   group by account_id, hour;
$$;
revoke execute on function keapsync.merge_sync_activity(text, uuid[], timestamptz[], bigint[], timestamptz[])
  from public, anon, authenticated;

-- In: one aggregate per statement (a backfill page of a thousand records costs one merge).
create or replace function keapsync.tg_sync_activity_in() returns trigger
language plpgsql security definer set search_path = ''
as $$
declare
  a uuid[];
  h timestamptz[];
  n bigint[];
  l timestamptz[];
begin
  select array_agg(account_id), array_agg(hour), array_agg(changes), array_agg(last_at)
    into a, h, n, l
    from (select r.account_id, date_trunc('hour', r.at, 'UTC') as hour, count(*) as changes, max(r.at) as last_at
            from new_rows r where r.origin = 'keap' group by 1, 2) x;
  if a is not null then
    perform keapsync.merge_sync_activity('in', a, h, n, l);
  end if;
  return null;
end;
$$;
revoke execute on function keapsync.tg_sync_activity_in() from public, anon, authenticated;

create trigger sync_activity_in after insert on keapsync.change_history
  referencing new table as new_rows for each statement execute function keapsync.tg_sync_activity_in();
alter table keapsync.change_history enable always trigger sync_activity_in;

-- Out: per row, because a trigger with a column list cannot have transition tables, and one
-- push is one row (pushes run at Keap's rate limit, a few per second at most). The column list
-- keeps the trigger off the apply path, which never sets last_pushed_at.
create or replace function keapsync.tg_sync_activity_out() returns trigger
language plpgsql security definer set search_path = ''
as $$
declare
  v_at timestamptz := now();
begin
  if tg_op = 'UPDATE' then
    v_at := coalesce(new.last_pushed_at, v_at);
  end if;
  perform keapsync.merge_sync_activity('out', array[old.account_id], array[date_trunc('hour', v_at, 'UTC')],
                                       array[1::bigint], array[v_at]);
  return null;
end;
$$;
revoke execute on function keapsync.tg_sync_activity_out() from public, anon, authenticated;

create trigger sync_activity_out after update of last_pushed_at on keapsync.sync_state
  for each row when (new.last_pushed_at is distinct from old.last_pushed_at)
  execute function keapsync.tg_sync_activity_out();
create trigger sync_activity_out_delete after delete on keapsync.sync_state
  for each row when (old.local_deleted_at is not null)
  execute function keapsync.tg_sync_activity_out();
alter table keapsync.sync_state enable always trigger sync_activity_out,
  enable always trigger sync_activity_out_delete;

-- What happened before this migration: every change that came in is in change_history; of the
-- pushes only each record's latest is known (sync_state.last_pushed_at).
insert into keapsync.sync_activity (account_id, hour, direction, changes, last_at)
select account_id, date_trunc('hour', at, 'UTC'), 'in', count(*), max(at)
  from keapsync.change_history where origin = 'keap' group by 1, 2;
insert into keapsync.sync_activity (account_id, hour, direction, changes, last_at)
select account_id, date_trunc('hour', last_pushed_at, 'UTC'), 'out', count(*), max(last_pushed_at)
  from keapsync.sync_state where last_pushed_at is not null group by 1, 2;
