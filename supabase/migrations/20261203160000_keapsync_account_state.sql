-- One truth for an account's state, computed here and nowhere else: the dashboard, /readyz,
-- `keapsync doctor` and `keapsync auth status` all read keapsync.account_state (through the Go
-- package sidecar/accountstate), so they cannot disagree.
--
-- States, first match wins:
--   not_connected  an OAuth account with no token stored (never connected, or revoked here)
--   needs_reauth   Keap refused the refresh token
--   paused         an admin paused it; queued work waits
--   failing        work is failing now: the oldest current failure's reason and since when
--   catching_up    work is waiting or a backfill is unfinished: with what
--   in_sync        nothing waits; last_exchange_at says when Keap last answered

-- How an account talks to Keap: its own OAuth tokens, or the sidecar's personal key
-- (KEAP_API_KEY), which stores no token here.
alter table keapsync.accounts add column credential text not null default 'oauth'
  check (credential in ('oauth', 'api_key'));
-- Accounts the sidecar made for a personal key name it by its budget key (keap.KeyBudgetKey).
update keapsync.accounts a set credential = 'api_key'
 where a.keap_tenant like 'key:%' and not exists (select 1 from keapsync.oauth_tokens t where t.account_id = a.id);

-- What a backfill or reconcile run really did: a failed run says so instead of "running".
alter table keapsync.sync_cursors add column last_error text, add column failed_at timestamptz;

-- Whether work for an account may run now. The push and inbox workers, serve's schedules and
-- the CLI's all-accounts commands ask this, so work for an account that cannot sync waits
-- (kept, not retried) while account_state says why.
create or replace function keapsync.account_can_sync(p_account uuid) returns boolean
language sql stable set search_path = ''
as $$
  select coalesce((
    select not a.paused and not a.needs_reauth
           and (a.credential = 'api_key'
                or exists (select 1 from keapsync.oauth_tokens t where t.account_id = a.id))
      from keapsync.accounts a where a.id = p_account), false);
$$;
revoke execute on function keapsync.account_can_sync(uuid) from public;
grant execute on function keapsync.account_can_sync(uuid) to service_role, authenticated;

create view keapsync.account_state with (security_invoker = true) as
select a.id as account_id, a.name, a.keap_tenant, a.credential,
       s.state, s.reason, s.since,
       greatest(case when t.last_error is null then t.refreshed_at end,
                x.cursor_at, x.hook_at, x.budget_at) as last_exchange_at,
       (s.state in ('failing', 'catching_up', 'in_sync')) as can_sync
  from keapsync.accounts a
  left join keapsync.oauth_tokens t on t.account_id = a.id
  -- The oldest failure that is still current.
  left join lateral (
    select e.reason, e.since from (
      select 'token refresh: ' || t.last_error as reason, t.updated_at as since
       where t.last_error is not null and not a.needs_reauth
      union all
      (select 'push to Keap: ' || q.last_error, q.first_enqueued_at from keapsync.push_queue q
        where q.account_id = a.id and q.attempts > 0 and q.last_error is not null
        order by q.first_enqueued_at limit 1)
      union all
      (select 'hook inbox: ' || i.last_error, i.received_at from keapsync.webhook_inbox i
        where i.account_id = a.id and i.processed_at is null and i.last_error is not null
        order by i.received_at limit 1)
      union all
      (select c.kind || ' of ' || c.object_type || 's: ' || c.last_error, c.failed_at from keapsync.sync_cursors c
        where c.account_id = a.id and c.last_error is not null
        order by c.failed_at limit 1)
    ) e order by e.since limit 1
  ) f on true
  -- What is waiting.
  left join lateral (
    select string_agg(w.what, '; ' order by w.ord) as what, min(w.since) as since from (
      select 1 as ord, 'backfill not started' as what, null::timestamptz as since
       where not exists (select 1 from keapsync.sync_cursors c where c.account_id = a.id and c.kind = 'backfill')
      union all
      select 2, 'backfill of ' || string_agg(c.object_type || 's', ', ' order by c.object_type), min(c.started_at)
        from keapsync.sync_cursors c
       where c.account_id = a.id and c.kind = 'backfill' and c.finished_at is null and c.last_error is null
      having count(*) > 0
      union all
      select 3, 'hook deliveries to fetch: ' || count(*), min(i.received_at) from keapsync.webhook_inbox i
       where i.account_id = a.id and i.processed_at is null
      having count(*) > 0
      union all
      select 4, 'local edits to push: ' || count(*), min(q.first_enqueued_at) from keapsync.push_queue q
       where q.account_id = a.id
      having count(*) > 0
    ) w
  ) w on true
  -- When Keap last answered: a finished or progressing sweep, a hook delivery, a budget report.
  left join lateral (
    select (select max(c.updated_at) from keapsync.sync_cursors c
             where c.account_id = a.id and c.last_error is null
               and (c.finished_at is not null or c.rows_done > 0)) as cursor_at,
           (select max(h.last_delivery_at) from keapsync.hook_subscriptions h where h.account_id = a.id) as hook_at,
           (select b.observed_at from keapsync.rate_budget_usage b where b.account_id = a.id) as budget_at
  ) x on true
  cross join lateral (
    select case
             when a.credential = 'oauth' and t.account_id is null then 'not_connected'
             when a.needs_reauth then 'needs_reauth'
             when a.paused then 'paused'
             when f.reason is not null then 'failing'
             when w.what is not null then 'catching_up'
             else 'in_sync'
           end as state
  ) k
  cross join lateral (
    select k.state,
           case k.state
             when 'needs_reauth' then coalesce(t.last_error, 'Keap refused the refresh token')
             when 'not_connected' then 'no Keap token stored'
             when 'paused' then 'sync stopped by an admin; queued work waits'
             when 'failing' then f.reason
             when 'catching_up' then w.what
           end as reason,
           case k.state
             when 'needs_reauth' then coalesce(t.updated_at, a.updated_at)
             when 'not_connected' then a.created_at
             when 'paused' then a.updated_at
             when 'failing' then f.since
             when 'catching_up' then w.since
           end as since
  ) s;

comment on view keapsync.account_state is 'One row per account: state (not_connected, needs_reauth, paused, failing, catching_up, in_sync), reason, since, last_exchange_at (when Keap last answered). The one truth the dashboard, /readyz, doctor and auth status show.';

revoke all on keapsync.account_state from public, anon;
grant select on keapsync.account_state to authenticated, service_role;
