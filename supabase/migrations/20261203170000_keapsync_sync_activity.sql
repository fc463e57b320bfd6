-- Sync activity per hour: how many changes came in from Keap and went out to Keap, per account,
-- kept by triggers so the dashboard's 48-hour chart and "last sync" read a hundred small rows
-- instead of counting change_history (a backfill writes a million history rows in an hour).
--
--   in:  change_history rows of origin 'keap' (every write the sync applied on Keap's behalf),
--        except an update of Keap's version clock alone (Keap's answer to our own push);
--   out: sync_state rows whose last_pushed_at moved (mark_pushed: Keap accepted a create or an
--        update), and sync_state rows of a local delete that go away (the delete reached Keap).
--
-- A writer only inserts its delta row (one per statement: a backfill page of a thousand records
-- costs one; a hook's single record costs one small insert). Now and then (one statement in
-- twenty, at random) it also compacts the recent hours: the rows of a bucket it can lock (SKIP
-- LOCKED) become one row with their sum, so writers never wait on one another and a bucket stays a
-- few rows. Readers sum per bucket (keapsync.sync_activity_hourly). Merging on every write, as
-- the KPI summaries do, cost 19% of the time of 6,000 single-record applies; this costs 4%
-- (pg_stat_user_functions; a page applied as one statement costs one insert either way).
-- Hours are cut in UTC whatever the writer's TimeZone. No foreign key to accounts, for the reason
-- the KPI summaries give (20261127095000_kpi_summaries.sql).

create table keapsync.sync_activity (
  account_id uuid not null,
  hour timestamptz not null,              -- the UTC hour the changes happened in
  direction text not null check (direction in ('in', 'out')),
  changes bigint not null,
  last_at timestamptz not null            -- the latest change of the bucket
);
create index sync_activity_idx on keapsync.sync_activity (account_id, direction, hour);
create index sync_activity_hour_idx on keapsync.sync_activity (hour);  -- compaction

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

-- Compact the buckets of the last three hours: each becomes one row with the sum of the rows no
-- other open transaction holds. Only the triggers below call it.
create or replace function keapsync.compact_sync_activity() returns void
language plpgsql volatile security definer set search_path = ''
as $$
begin
  with merged as (
    delete from keapsync.sync_activity s
     where s.ctid = any (array(
             select s.ctid from keapsync.sync_activity s
              where s.hour >= date_trunc('hour', now(), 'UTC') - interval '2 hours'
                and (s.account_id, s.direction, s.hour) in (
                      select d.account_id, d.direction, d.hour from keapsync.sync_activity d
                       where d.hour >= date_trunc('hour', now(), 'UTC') - interval '2 hours'
                       group by 1, 2, 3 having count(*) > 1)
                for update of s skip locked))
    returning s.account_id, s.hour, s.direction, s.changes, s.last_at)
  insert into keapsync.sync_activity (account_id, hour, direction, changes, last_at)
  select account_id, hour, direction, sum(changes), max(last_at) from merged group by 1, 2, 3;
end;
$$;
revoke execute on function keapsync.compact_sync_activity() from public, anon, authenticated;

-- In: one delta row per account and hour of the statement's history rows from Keap. An update that
-- moves only Keap's clock (last_updated, modification_date) is the echo of a push: not "in".
create or replace function keapsync.tg_sync_activity_in() returns trigger
language plpgsql security definer set search_path = ''
as $$
begin
  insert into keapsync.sync_activity (account_id, hour, direction, changes, last_at)
  select r.account_id, date_trunc('hour', r.at, 'UTC'), 'in', count(*), max(r.at)
    from new_rows r
   where r.origin = 'keap'
     and not (r.op = 'update' and r.changed - '{last_updated,modification_date}'::text[] = '{}'::jsonb)
   group by 1, 2;
  if found and random() < 0.05 then
    perform keapsync.compact_sync_activity();
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
  insert into keapsync.sync_activity (account_id, hour, direction, changes, last_at)
  values (old.account_id, date_trunc('hour', v_at, 'UTC'), 'out', 1, v_at);
  if random() < 0.05 then
    perform keapsync.compact_sync_activity();
  end if;
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
  from keapsync.change_history
 where origin = 'keap' and not (op = 'update' and changed - '{last_updated,modification_date}'::text[] = '{}'::jsonb)
 group by 1, 2;
insert into keapsync.sync_activity (account_id, hour, direction, changes, last_at)
select account_id, date_trunc('hour', last_pushed_at, 'UTC'), 'out', count(*), max(last_pushed_at)
  from keapsync.sync_state where last_pushed_at is not null group by 1, 2;

-- The least-privilege sidecar role reads and writes the new table through a policy of its own.
select keapsync.grant_sidecar_rls();
