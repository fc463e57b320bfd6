-- keapsync.sync_status.connection no longer says 'connected' for an account with no token: it
-- follows the first steps of keapsync.account_state (not_connected, needs_reauth, paused), the
-- part analysts may read. The full state (failing, catching up, in sync) is account_state.
grant select (credential) on keapsync.accounts to keap_analyst;

create or replace view keapsync.sync_status with (security_invoker = true) as
select
  a.id as account_id,
  a.name,
  case when a.credential = 'oauth' and t.account_id is null then 'not_connected'
       when a.needs_reauth then 'needs_reauth' when a.paused then 'paused' else 'connected' end as connection,
  t.access_expires_at,
  t.refresh_expires_at,
  (select count(*) from keapsync.hook_subscriptions h where h.account_id = a.id and h.status = 'Verified') as hooks_verified,
  (select count(*) from keapsync.hook_subscriptions h where h.account_id = a.id) as hooks_total,
  (select max(h.last_delivery_at) from keapsync.hook_subscriptions h where h.account_id = a.id) as last_hook_at,
  (select count(*) from keapsync.webhook_inbox i where i.account_id = a.id and i.processed_at is null) as inbox_pending,
  (select min(i.received_at) from keapsync.webhook_inbox i where i.account_id = a.id and i.processed_at is null) as inbox_oldest,
  (select count(*) from keapsync.conflicts c where c.account_id = a.id and c.status = 'open') as conflicts_open,
  (select count(*) from keapsync.dead_letters d where d.account_id = a.id and d.status in ('parked', 'retry')) as dead_letters,
  (select coalesce(sum(s.rows_done), 0) from keapsync.sync_cursors s where s.account_id = a.id and s.kind = 'backfill') as backfill_rows_done,
  (select sum(s.rows_total) from keapsync.sync_cursors s where s.account_id = a.id and s.kind = 'backfill') as backfill_rows_total,
  (select bool_and(s.finished_at is not null) from keapsync.sync_cursors s where s.account_id = a.id and s.kind = 'backfill') as backfill_done
from keapsync.accounts a
left join keapsync.oauth_tokens t on t.account_id = a.id;
