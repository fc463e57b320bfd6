-- Views for sync status and business KPIs. security_invoker, so RLS of the underlying tables
-- decides what each reader sees (members: their accounts; analysts: everything).

create view keapsync.sync_status with (security_invoker = true) as
select
  a.id as account_id,
  a.name,
  case when a.needs_reauth then 'needs_reauth' when a.paused then 'paused' else 'connected' end as connection,
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

create view keapsync.kpi_contacts_weekly with (security_invoker = true) as
select account_id, date_trunc('week', coalesce(date_created, created_at)) as week, count(*) as new_contacts
from keap.contacts
group by 1, 2;

create view keapsync.kpi_orders_monthly with (security_invoker = true) as
select account_id, date_trunc('month', order_date) as month, count(*) as orders,
       coalesce(sum(total), 0) as revenue, coalesce(sum(total_paid), 0) as paid
from keap.orders
where order_date is not null
group by 1, 2;

-- Monthly recurring revenue of active subscriptions, normalised by billing cycle.
create view keapsync.kpi_subscriptions with (security_invoker = true) as
select account_id,
       count(*) filter (where active) as active_subscriptions,
       round(coalesce(sum(
         case billing_cycle
           when 'YEAR' then billing_amount / 12.0 / greatest(coalesce(billing_frequency, 1), 1)
           when 'MONTH' then billing_amount / greatest(coalesce(billing_frequency, 1), 1)
           when 'WEEK' then billing_amount * 52.0 / 12.0 / greatest(coalesce(billing_frequency, 1), 1)
           when 'DAY' then billing_amount * 365.0 / 12.0 / greatest(coalesce(billing_frequency, 1), 1)
         end * coalesce(quantity, 1)) filter (where active), 0), 2) as mrr
from keap.subscriptions
group by 1;

create view keapsync.kpi_top_tags with (security_invoker = true) as
select ct.account_id, t.id as tag_id, t.keap_id as tag_keap_id, t.name, count(*) as contacts
from keap.contact_tags ct
join keap.tags t on t.id = ct.tag_id
group by 1, 2, 3, 4;

grant select on keapsync.sync_status, keapsync.kpi_contacts_weekly, keapsync.kpi_orders_monthly,
  keapsync.kpi_subscriptions, keapsync.kpi_top_tags
  to authenticated, keap_analyst, service_role;
