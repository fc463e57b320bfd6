-- Ingest: per-account hook URLs and the webhook inbox as a durable work queue.
--
-- Keap does not sign hook deliveries, so each account receives them at an unguessable path;
-- the token is a secret of the service role. The inbox row is the unit of work: a delivery is
-- acknowledged after its row commits, workers claim due rows with FOR UPDATE SKIP LOCKED, and a
-- row is marked processed in the same transaction that applies what it named.

create table keapsync.hook_endpoints (
  account_id uuid primary key references keapsync.accounts (id) on delete cascade,
  -- two random UUIDs: 244 random bits, from core PostgreSQL alone
  path_token text not null unique default replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''),
  created_at timestamptz not null default now()
);
alter table keapsync.hook_endpoints enable row level security;
grant all on keapsync.hook_endpoints to service_role;

alter table keapsync.webhook_inbox
  add column body_sha256 bytea,
  add column next_attempt_at timestamptz not null default now();
-- A delivery Keap retries while the first copy still waits is the same work: keep one.
create unique index webhook_inbox_pending_body_idx on keapsync.webhook_inbox (account_id, body_sha256)
  where processed_at is null;
create index webhook_inbox_due_idx on keapsync.webhook_inbox (next_attempt_at)
  where processed_at is null;
