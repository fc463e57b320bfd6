-- Operating for months: bounded tables (retention and batched pruning), stall detection per
-- account and path, and the figures /metrics exports about them. Postgres decides what is old and
-- what is stalled; serve and `keapsync prune` only call these functions on a schedule.

-- ---- retention ---------------------------------------------------------------------------------
-- Per-account windows; an account without a row uses the column defaults.
create table keapsync.retention (
  account_id uuid primary key references keapsync.accounts (id) on delete cascade,
  processed_days int not null default 7 check (processed_days > 0),   -- processed hook inbox rows
  history_days int not null default 90 check (history_days > 0),      -- keapsync.change_history
  resolved_days int not null default 30 check (resolved_days > 0),     -- resolved conflicts, settled dead letters
  -- The highest change_history id pruned, so a rollback of a pruned change can say why it is gone.
  history_pruned_through bigint not null default 0,
  updated_at timestamptz not null default now()
);
comment on table keapsync.retention is 'Per-account retention windows (days) for keapsync.prune; defaults apply to accounts without a row.';
alter table keapsync.retention enable row level security;
-- Service role only: set by SQL (an admin's psql or the service key), read by keapsync prune and serve.
revoke all on keapsync.retention from public, anon, authenticated;
grant all on keapsync.retention to service_role;

-- Pruning reads processed rows by account and age; the partial index keeps that off the pending rows.
create index webhook_inbox_processed_idx on keapsync.webhook_inbox (account_id, processed_at)
  where processed_at is not null;
create index conflicts_resolved_idx on keapsync.conflicts (account_id, resolved_at) where status = 'resolved';

-- keapsync.prune deletes at most p_batch rows of each kind for one account (or every account when
-- p_account is null) and returns how many went; with p_dry_run it deletes nothing and counts
-- everything that would go. Small batches keep each transaction, its locks and its dead tuples
-- short; serve calls it again until nothing is left. p_now is the clock (tests move it).
-- Expired OAuth states and links (no account) go at once, on every call.
create or replace function keapsync.prune(p_account uuid, p_batch int default 500, p_dry_run boolean default false,
                                          p_now timestamptz default now())
returns table (account_id uuid, what text, rows bigint)
language plpgsql security definer set search_path = ''
as $$
declare
  a record;
  n bigint;
  v_max bigint;
begin
  if p_batch is null or p_batch < 1 then
    raise exception 'keapsync: prune batch must be positive' using errcode = '22023';
  end if;
  for a in
    select x.id, coalesce(r.processed_days, 7) as processed_days, coalesce(r.history_days, 90) as history_days,
           coalesce(r.resolved_days, 30) as resolved_days
      from keapsync.accounts x left join keapsync.retention r on r.account_id = x.id
     where p_account is null or x.id = p_account
     order by x.created_at
  loop
    -- processed hook deliveries
    if p_dry_run then
      select count(*) into n from keapsync.webhook_inbox i
       where i.account_id = a.id and i.processed_at < p_now - make_interval(days => a.processed_days);
    else
      with d as (
        delete from keapsync.webhook_inbox i where i.id in (
          select i2.id from keapsync.webhook_inbox i2
           where i2.account_id = a.id and i2.processed_at < p_now - make_interval(days => a.processed_days)
           order by i2.processed_at limit p_batch)
        returning 1)
      select count(*) into n from d;
    end if;
    account_id := a.id; what := 'webhook_inbox'; rows := n; return next;

    -- change history: oldest first, so a row and the later row that rolled it back go in order
    -- (rolled_back_by points forward in time).
    if p_dry_run then
      select count(*) into n from keapsync.change_history h
       where h.account_id = a.id and h.at < p_now - make_interval(days => a.history_days);
    else
      with doomed as (
        select h2.id from keapsync.change_history h2
         where h2.account_id = a.id and h2.at < p_now - make_interval(days => a.history_days)
         order by h2.id limit p_batch),
      -- a newer row kept that a doomed row rolled back would dangle; unlink it first
      d as (delete from keapsync.change_history h where h.id in (select id from doomed)
              and not exists (select 1 from keapsync.change_history k
                               where k.rolled_back_by = h.id and k.id not in (select id from doomed))
            returning h.id)
      select count(*), max(d.id) into n, v_max from d;
      if v_max is not null then
        insert into keapsync.retention as r (account_id, history_pruned_through) values (a.id, v_max)
        on conflict on constraint retention_pkey
        do update set history_pruned_through = greatest(r.history_pruned_through, excluded.history_pruned_through);
      end if;
    end if;
    account_id := a.id; what := 'change_history'; rows := n; return next;

    -- resolved conflicts
    if p_dry_run then
      select count(*) into n from keapsync.conflicts c
       where c.account_id = a.id and c.status = 'resolved' and c.resolved_at < p_now - make_interval(days => a.resolved_days);
    else
      with d as (
        delete from keapsync.conflicts c where c.id in (
          select c2.id from keapsync.conflicts c2
           where c2.account_id = a.id and c2.status = 'resolved'
             and c2.resolved_at < p_now - make_interval(days => a.resolved_days)
           order by c2.resolved_at limit p_batch)
        returning 1)
      select count(*) into n from d;
    end if;
    account_id := a.id; what := 'conflicts'; rows := n; return next;

    -- settled dead letters (done or discarded), by when they were last touched
    if p_dry_run then
      select count(*) into n from keapsync.dead_letters l
       where l.account_id = a.id and l.status in ('done', 'discarded')
         and greatest(l.last_failed_at, l.retry_requested_at) < p_now - make_interval(days => a.resolved_days);
    else
      with d as (
        delete from keapsync.dead_letters l where l.id in (
          select l2.id from keapsync.dead_letters l2
           where l2.account_id = a.id and l2.status in ('done', 'discarded')
             and greatest(l2.last_failed_at, l2.retry_requested_at) < p_now - make_interval(days => a.resolved_days)
           limit p_batch)
        returning 1)
      select count(*) into n from d;
    end if;
    account_id := a.id; what := 'dead_letters'; rows := n; return next;
  end loop;

  -- expired OAuth states and links belong to no account: at once
  if p_dry_run then
    select (select count(*) from keapsync.oauth_states s where s.expires_at <= p_now)
         + (select count(*) from keapsync.oauth_links l where l.expires_at <= p_now) into n;
  else
    with s as (delete from keapsync.oauth_states s where s.expires_at <= p_now returning 1),
         l as (delete from keapsync.oauth_links l where l.expires_at <= p_now returning 1)
    select (select count(*) from s) + (select count(*) from l) into n;
  end if;
  account_id := null; what := 'oauth'; rows := n; return next;
end;
$$;
revoke execute on function keapsync.prune(uuid, int, boolean, timestamptz) from public;
grant execute on function keapsync.prune(uuid, int, boolean, timestamptz) to service_role;

-- Why a change is not in the history any more: the history window of the account that pruned
-- that far (null when none did, i.e. the id never existed or is still there). The CLI and the
-- dashboard ask after rollback_change found no such change; a person learns only about the
-- accounts they belong to.
create or replace function keapsync.history_window_of_pruned(p_history_id bigint) returns int
language sql stable security definer set search_path = ''
as $$
  select min(r.history_days) from keapsync.retention r
   where r.history_pruned_through >= p_history_id
     and not exists (select 1 from keapsync.change_history h where h.id = p_history_id)
     and (coalesce(auth.role(), nullif(current_setting('role', true), 'none'), '') not in ('authenticated', 'anon')
          or r.account_id = any (keapsync.my_accounts()));
$$;
revoke execute on function keapsync.history_window_of_pruned(bigint) from public;
grant execute on function keapsync.history_window_of_pruned(bigint) to authenticated, service_role;

-- ---- stalls ------------------------------------------------------------------------------------
-- Where the replication slot's confirmed position was last seen and when it last moved; serve
-- samples it (keapsync.observe_slot) so "not advancing" has a memory across samples and restarts.
create table keapsync.slot_progress (
  slot_name text primary key,
  confirmed_lsn pg_lsn,
  advanced_at timestamptz not null,
  observed_at timestamptz not null
);
alter table keapsync.slot_progress enable row level security;
revoke all on keapsync.slot_progress from public, anon, authenticated;
grant all on keapsync.slot_progress to service_role;

create or replace function keapsync.observe_slot(p_slot text, p_now timestamptz default now()) returns void
language sql security definer set search_path = ''
as $$
  insert into keapsync.slot_progress as p (slot_name, confirmed_lsn, advanced_at, observed_at)
  select s.slot_name, s.confirmed_flush_lsn, p_now, p_now from pg_catalog.pg_replication_slots s where s.slot_name = p_slot
  on conflict (slot_name) do update
    set advanced_at = case when p.confirmed_lsn is distinct from excluded.confirmed_lsn then p_now else p.advanced_at end,
        confirmed_lsn = excluded.confirmed_lsn, observed_at = p_now;
$$;
revoke execute on function keapsync.observe_slot(text, timestamptz) from public;
grant execute on function keapsync.observe_slot(text, timestamptz) to service_role;

-- Work waiting and nothing advanced for longer than the threshold, per account and path:
--   inbox      hook deliveries due and none processed for the account within the threshold
--   push       local edits due and none pushed for the account within the threshold
--   reconcile  a finished backfill and no reconcile run recorded within p_reconcile_threshold
--   slot       (no account) WAL waits beyond the slot's confirmed position, which has not moved
--              within the threshold (keapsync.observe_slot remembers when it last moved)
-- Accounts that cannot sync now (paused, needs re-authorization) are not stalled: account_state
-- already says why they wait. Rows failing with a back-off are "failing", not stalled.
create or replace function keapsync.stalls(p_threshold interval default '15 minutes',
                                           p_reconcile_threshold interval default '1 hour',
                                           p_now timestamptz default now())
returns table (account_id uuid, path text, waiting_since timestamptz, last_progress_at timestamptz, detail text)
language sql stable security invoker set search_path = ''
as $$
  select a.id, 'inbox', w.since, w.progress, w.n || ' hook deliveries waiting'
    from keapsync.accounts a
    cross join lateral (
      select min(i.received_at) as since, count(*) as n,
             (select max(p.processed_at) from keapsync.webhook_inbox p
               where p.account_id = a.id and p.processed_at is not null) as progress
        from keapsync.webhook_inbox i
       where i.account_id = a.id and i.processed_at is null and i.next_attempt_at <= p_now) w
   where keapsync.account_can_sync(a.id) and w.since < p_now - p_threshold
     and coalesce(w.progress, '-infinity') < p_now - p_threshold
  union all
  select a.id, 'push', w.since, w.progress, w.n || ' local edits waiting'
    from keapsync.accounts a
    cross join lateral (
      -- the last push is looked up only when an edit has waited past the threshold (sync_state
      -- has no index on it, and /readyz asks often)
      select min(q.first_enqueued_at) as since, count(*) as n,
             case when min(q.first_enqueued_at) < p_now - p_threshold then
               (select max(s.last_pushed_at) from keapsync.sync_state s where s.account_id = a.id) end as progress
        from keapsync.push_queue q
       where q.account_id = a.id and q.next_attempt_at <= p_now) w
   where keapsync.account_can_sync(a.id) and w.since < p_now - p_threshold
     and coalesce(w.progress, '-infinity') < p_now - p_threshold
  union all
  select a.id, 'reconcile', w.backfilled, w.progress, 'no reconcile run since ' || coalesce(w.progress, w.backfilled)::text
    from keapsync.accounts a
    cross join lateral (
      select (select max(c.finished_at) from keapsync.sync_cursors c
               where c.account_id = a.id and c.kind = 'backfill') as backfilled,
             (select max(c.updated_at) from keapsync.sync_cursors c
               where c.account_id = a.id and c.kind = 'reconcile' and c.last_error is null) as progress) w
   where keapsync.account_can_sync(a.id) and w.backfilled is not null
     and greatest(w.backfilled, w.progress) < p_now - p_reconcile_threshold
  union all
  select null::uuid, 'slot', p.advanced_at, p.advanced_at,
         'slot ' || s.slot_name || ': ' || pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), s.confirmed_flush_lsn)
           || ' WAL bytes wait beyond its confirmed position'
    from pg_catalog.pg_replication_slots s
    join keapsync.slot_progress p on p.slot_name = s.slot_name
   where s.confirmed_flush_lsn is not null
     and pg_catalog.pg_current_wal_lsn() > s.confirmed_flush_lsn
     and p.confirmed_lsn = s.confirmed_flush_lsn
     and p.advanced_at < p_now - p_threshold
$$;
revoke execute on function keapsync.stalls(interval, interval, timestamptz) from public;
grant execute on function keapsync.stalls(interval, interval, timestamptz) to service_role;

-- The stalls a signed-in person may see (the dashboard's Sync health): their accounts' and the
-- slot's (the database's, visible in pg_replication_slots to everyone anyway).
create or replace function keapsync.my_stalls(p_threshold interval default '15 minutes',
                                              p_reconcile_threshold interval default '1 hour')
returns table (account_id uuid, path text, waiting_since timestamptz, last_progress_at timestamptz, detail text)
language sql stable security definer set search_path = ''
as $$
  select s.* from keapsync.stalls(p_threshold, p_reconcile_threshold) s
   where s.account_id is null or s.account_id = any (keapsync.my_accounts());
$$;
revoke execute on function keapsync.my_stalls(interval, interval) from public;
grant execute on function keapsync.my_stalls(interval, interval) to authenticated, service_role;

-- ---- figures for /metrics ----------------------------------------------------------------------
-- One row per account with what the alert rules watch (serve's collector reads it at scrape time).
create or replace function keapsync.ops_figures()
returns table (account_id uuid, account text, needs_reauth boolean, hooks_inactive bigint,
               inbox_pending bigint, inbox_oldest_seconds float8, dead_letters_parked bigint,
               quota_used_ratio float8, token_refresh_failing boolean)
language sql stable security definer set search_path = ''
as $$
  select a.id, coalesce(a.keap_tenant, a.name), a.needs_reauth,
         (select count(*) from keapsync.hook_subscriptions h where h.account_id = a.id and h.status = 'Inactive'),
         i.n, coalesce(extract(epoch from now() - i.oldest), 0)::float8,
         (select count(*) from keapsync.dead_letters l where l.account_id = a.id and l.status = 'parked'),
         (select case when b.per_day > 0 then 1 - b.day_available::float8 / b.per_day end
            from keapsync.rate_budget_usage b where b.account_id = a.id),
         coalesce((select t.last_error is not null from keapsync.oauth_tokens t where t.account_id = a.id), false)
    from keapsync.accounts a
    cross join lateral (select count(*) as n, min(w.received_at) as oldest from keapsync.webhook_inbox w
                         where w.account_id = a.id and w.processed_at is null) i
   order by a.created_at;
$$;
revoke execute on function keapsync.ops_figures() from public;
grant execute on function keapsync.ops_figures() to service_role;

select keapsync.grant_sidecar_rls();
