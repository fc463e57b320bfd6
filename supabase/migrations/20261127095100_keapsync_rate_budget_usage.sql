-- Keap's request budget per account, as the sidecar last saw it, for the sync-health page.
--
-- The limiter lives in the sidecar's memory (sidecar/keap), fed by Keap's x-keap-* headers;
-- `keapsync serve` copies each account's numbers here when they change. A row holds the
-- account's own budget, its Keap app's (the tenant's throttle and daily quota), so members may
-- read it like the rest of their account. The OAuth client's budget is shared by every account
-- one sidecar serves and is not stored: its use would tell one account's members about the
-- others' (it is on /metrics).

create table keapsync.rate_budget_usage (
  account_id uuid primary key references keapsync.accounts (id) on delete cascade,
  per_minute integer,                 -- the throttle window's limit, as Keap reports it
  minute_available integer,           -- calls left in the current minute; null until Keap said
  per_day integer,                    -- the daily quota
  day_available integer,              -- calls left today; null until Keap said
  day_resets_at timestamptz,          -- when the daily quota starts over (00:00 UTC)
  paused_until timestamptz,           -- calls wait until then (a 429's backoff, the quota spent)
  observed_at timestamptz not null default now()
);

alter table keapsync.rate_budget_usage enable row level security;
revoke all on keapsync.rate_budget_usage from public, anon, authenticated;
grant select on keapsync.rate_budget_usage to authenticated;
create policy members_read on keapsync.rate_budget_usage for select to authenticated
  using (account_id = any ((select keapsync.my_accounts())::uuid[]));
