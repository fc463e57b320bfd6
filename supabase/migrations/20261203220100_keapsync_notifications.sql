-- What serve last told a person (KEAPSYNC_NOTIFY_WEBHOOK_URL): one row per condition that needs
-- a human (needs re-authorization, hooks Inactive, a stall, dead letters). A row is claimed
-- before the message is posted, so each state change is posted once even with several serve
-- processes, and removed (with a recovery message) when the condition clears.
create table keapsync.notifications (
  key text primary key,                 -- e.g. needs_reauth/<account id>, stall/inbox/<account id>
  seq bigint not null default 0,        -- grows when the condition worsens anew (a newer dead letter)
  message text not null,
  notified_at timestamptz not null default now()
);
alter table keapsync.notifications enable row level security;
revoke all on keapsync.notifications from public, anon, authenticated;
grant all on keapsync.notifications to service_role;

select keapsync.grant_sidecar_rls();
