-- KPI summaries: per-account counts kept up to date by statement-level triggers, so the KPI views
-- and the dashboard's overview read a few hundred rows per account instead of aggregating
-- keap.contacts, keap.orders and keap.contact_tags (seconds per page at a million contacts).
--
-- Each summary is the aggregate of signed rows of its source table: +1 for a row a statement
-- wrote, -1 for a row it replaced or removed. A trigger aggregates its statement's transition
-- tables that way, per account and bucket (one aggregate per statement, not per row: a backfill
-- page of thousands of rows costs one), and merges the result into the bucket's row.
-- keapsync.rebuild_kpi_summaries() aggregates whole tables through the same SQL, which is also how
-- this migration fills them.
--
-- A writer never waits for another one here. A bucket is one row, but not a unique one: the merge
-- deletes the bucket's rows it can lock (SKIP LOCKED) and inserts their sum plus its delta. Rows
-- another open transaction merged stay beside it until a later statement merges them. With an
-- ON CONFLICT counter instead, every transaction that writes a contact of this week would queue
-- behind any open transaction that did (a psql session left open stalls the sync), and
-- transactions of several statements deadlock: 28 of 240 in TestKPISummariesUnderConcurrency, 0
-- without the summaries. Readers therefore sum per bucket (the views do); a bucket whose rows sum
-- to zero is gone, so the sums equal what a GROUP BY over the source returns.
--
-- No foreign key to keapsync.accounts: deleting an account cascades to its keap rows, whose delete
-- triggers empty its buckets; a cascade into the summaries as well would race with those
-- triggers (PostgreSQL fires the two cascades in trigger-name order).
-- Weeks and months are cut in UTC, whatever the writer's TimeZone: a bucket is fixed when it is
-- written, not when it is read (the views cut in the reader's zone before; Supabase runs in UTC).

create table keapsync.kpi_contacts_by_week (
  account_id uuid not null,
  week timestamptz not null,              -- Monday 00:00 UTC of coalesce(date_created, created_at)
  contacts bigint not null
);
create index kpi_contacts_by_week_idx on keapsync.kpi_contacts_by_week (account_id, week);

create table keapsync.kpi_orders_by_month (
  account_id uuid not null,
  month timestamptz,                      -- null: orders without an order date (totals only)
  orders bigint not null,
  revenue numeric not null,               -- sum(total)
  paid numeric not null                   -- sum(total_paid)
);
create index kpi_orders_by_month_idx on keapsync.kpi_orders_by_month (account_id, month);

create table keapsync.kpi_tag_counts (
  account_id uuid not null,               -- the contact_tags row's account
  tag_id bigint not null,
  contacts bigint not null
);
create index kpi_tag_counts_idx on keapsync.kpi_tag_counts (account_id, tag_id);

create table keapsync.kpi_subscription_totals (
  account_id uuid not null,
  subscriptions bigint not null,          -- all rows, so an account with only inactive ones still shows
  active bigint not null,
  mrr numeric not null                    -- unrounded monthly recurring revenue of the active ones
);
create index kpi_subscription_totals_idx on keapsync.kpi_subscription_totals (account_id);

-- The summaries: for each source table, its summary and the statement that merges a set of
-- signed source rows into it. %s is the signed rows (a query with every column of the source
-- table and `sign`). A bucket is left alone when nothing it sums changed (an UPDATE of other
-- columns), and dropped when its sum reaches zero.
create or replace function keapsync.kpi_summaries()
returns table (source text, summary text, add_sql text)
language sql immutable set search_path = ''
as $fn$
  values
  ('contacts', 'kpi_contacts_by_week', $q$
    with delta as (
      select account_id, date_trunc('week', coalesce(date_created, created_at) at time zone 'UTC') at time zone 'UTC' as week,
             sum(sign) as contacts
        from (%s) r
       group by 1, 2 having sum(sign) <> 0),
    merged as (
      delete from keapsync.kpi_contacts_by_week k
       where k.ctid = any (array(select k.ctid from keapsync.kpi_contacts_by_week k
                                   join delta d on d.account_id = k.account_id and d.week = k.week
                                    for update of k skip locked))
      returning k.account_id, k.week, k.contacts)
    insert into keapsync.kpi_contacts_by_week (account_id, week, contacts)
    select account_id, week, sum(contacts) from (table delta union all table merged) m
     group by 1, 2 having sum(contacts) <> 0 $q$),
  ('orders', 'kpi_orders_by_month', $q$
    with delta as (
      select account_id, month, sum(sign) as orders, sum(revenue) as revenue, sum(paid) as paid
        from (select account_id, date_trunc('month', order_date at time zone 'UTC') at time zone 'UTC' as month, sign,
                     coalesce(total, 0) * sign as revenue, coalesce(total_paid, 0) * sign as paid
                from (%s) r) c
       group by 1, 2 having sum(sign) <> 0 or sum(revenue) <> 0 or sum(paid) <> 0),
    merged as (
      delete from keapsync.kpi_orders_by_month k
       where k.ctid = any (array(select k.ctid from keapsync.kpi_orders_by_month k
                                   join delta d on d.account_id = k.account_id and d.month is not distinct from k.month
                                    for update of k skip locked))
      returning k.account_id, k.month, k.orders, k.revenue, k.paid)
    insert into keapsync.kpi_orders_by_month (account_id, month, orders, revenue, paid)
    select account_id, month, sum(orders), sum(revenue), sum(paid) from (table delta union all table merged) m
     group by 1, 2 having sum(orders) <> 0 or sum(revenue) <> 0 or sum(paid) <> 0 $q$),
  ('contact_tags', 'kpi_tag_counts', $q$
    with delta as (
      select account_id, tag_id, sum(sign) as contacts
        from (%s) r
       group by 1, 2 having sum(sign) <> 0),
    merged as (
      delete from keapsync.kpi_tag_counts k
       where k.ctid = any (array(select k.ctid from keapsync.kpi_tag_counts k
                                   join delta d on d.account_id = k.account_id and d.tag_id = k.tag_id
                                    for update of k skip locked))
      returning k.account_id, k.tag_id, k.contacts)
    insert into keapsync.kpi_tag_counts (account_id, tag_id, contacts)
    select account_id, tag_id, sum(contacts) from (table delta union all table merged) m
     group by 1, 2 having sum(contacts) <> 0 $q$),
  -- MRR normalises each active subscription by its billing cycle; a cycle not listed adds nothing.
  ('subscriptions', 'kpi_subscription_totals', $q$
    with delta as (
      select account_id, sum(sign) as subscriptions, sum(active) as active, sum(mrr) as mrr
        from (select account_id, sign, case when active then sign else 0 end as active,
                     case when active then sign * coalesce(case billing_cycle
                       when 'YEAR' then billing_amount / 12.0 / greatest(coalesce(billing_frequency, 1), 1)
                       when 'MONTH' then billing_amount / greatest(coalesce(billing_frequency, 1), 1)
                       when 'WEEK' then billing_amount * 52.0 / 12.0 / greatest(coalesce(billing_frequency, 1), 1)
                       when 'DAY' then billing_amount * 365.0 / 12.0 / greatest(coalesce(billing_frequency, 1), 1)
                     end * coalesce(quantity, 1), 0) else 0 end as mrr
                from (%s) r) c
       group by 1 having sum(sign) <> 0 or sum(active) <> 0 or sum(mrr) <> 0),
    merged as (
      delete from keapsync.kpi_subscription_totals k
       where k.ctid = any (array(select k.ctid from keapsync.kpi_subscription_totals k
                                   join delta d on d.account_id = k.account_id
                                    for update of k skip locked))
      returning k.account_id, k.subscriptions, k.active, k.mrr)
    insert into keapsync.kpi_subscription_totals (account_id, subscriptions, active, mrr)
    select account_id, sum(subscriptions), sum(active), sum(mrr) from (table delta union all table merged) m
     group by 1 having sum(subscriptions) <> 0 or sum(active) <> 0 or sum(mrr) <> 0 $q$)
$fn$;

-- After a statement on a source table: merge its transition tables, signed, into the summary. One
-- function for all four tables; only the constant SQL above is executed, never input. The
-- transition tables are named new_rows and old_rows by every kpi trigger.
create or replace function keapsync.tg_kpi_summary() returns trigger
language plpgsql security definer set search_path = ''
as $$
declare
  s record;
begin
  select * into strict s from keapsync.kpi_summaries() k where k.source = tg_table_name;
  if tg_op = 'TRUNCATE' then
    execute format('delete from keapsync.%I', s.summary);
    return null;
  end if;
  execute format(s.add_sql, case tg_op
      when 'INSERT' then 'select *, 1 as sign from new_rows'
      when 'DELETE' then 'select *, -1 as sign from old_rows'
      else 'select *, 1 as sign from new_rows union all select *, -1 as sign from old_rows' end);
  return null;
end;
$$;

-- Recompute the summaries of one account (or all) from their source tables. For repairs, e.g.
-- after rows were loaded with the triggers disabled. Writers to the source tables wait until
-- the caller's transaction ends, so no change is counted twice or lost meanwhile.
create or replace function keapsync.rebuild_kpi_summaries(p_account uuid default null) returns void
language plpgsql volatile security definer set search_path = ''
as $$
declare
  s record;
begin
  lock table keap.contacts, keap.orders, keap.contact_tags, keap.subscriptions in share mode;
  for s in select * from keapsync.kpi_summaries() loop
    execute format('delete from keapsync.%I where $1 is null or account_id = $1', s.summary) using p_account;
    execute format(s.add_sql, format('select *, 1 as sign from keap.%I where $1 is null or account_id = $1', s.source))
      using p_account;
  end loop;
end;
$$;

-- Statement-level triggers with transition tables, never row-level: a backfill writes thousands
-- of rows per statement. ENABLE ALWAYS: a summary must follow its table whoever writes it, also
-- with session_replication_role = replica (logical replication apply, bulk loads) that switches
-- the history triggers off.
do $triggers$
declare
  t text;
begin
  foreach t in array array['contacts', 'orders', 'contact_tags', 'subscriptions'] loop
    execute format('create trigger kpi_insert after insert on keap.%I referencing new table as new_rows
                    for each statement execute function keapsync.tg_kpi_summary()', t);
    execute format('create trigger kpi_update after update on keap.%I referencing old table as old_rows new table as new_rows
                    for each statement execute function keapsync.tg_kpi_summary()', t);
    execute format('create trigger kpi_delete after delete on keap.%I referencing old table as old_rows
                    for each statement execute function keapsync.tg_kpi_summary()', t);
    execute format('create trigger kpi_truncate after truncate on keap.%I
                    for each statement execute function keapsync.tg_kpi_summary()', t);
    execute format('alter table keap.%I enable always trigger kpi_insert, enable always trigger kpi_update,
                      enable always trigger kpi_delete, enable always trigger kpi_truncate', t);
  end loop;
end
$triggers$;

-- The rows already there. The triggers exist from here on and hold writers off until this
-- migration commits, so nothing slips between the two.
select keapsync.rebuild_kpi_summaries();

-- The KPI views keep their names and columns (analysts query them) and read the summaries,
-- summing each bucket's rows (one, or a few while writers overlap).
create or replace view keapsync.kpi_contacts_weekly with (security_invoker = true) as
select account_id, week, sum(contacts)::bigint as new_contacts
from keapsync.kpi_contacts_by_week
group by 1, 2 having sum(contacts) <> 0;

create or replace view keapsync.kpi_orders_monthly with (security_invoker = true) as
select account_id, month, sum(orders)::bigint as orders, sum(revenue) as revenue, sum(paid) as paid
from keapsync.kpi_orders_by_month
where month is not null
group by 1, 2 having sum(orders) <> 0;

create or replace view keapsync.kpi_subscriptions with (security_invoker = true) as
select account_id, sum(active)::bigint as active_subscriptions, round(sum(mrr), 2) as mrr
from keapsync.kpi_subscription_totals
group by 1 having sum(subscriptions) <> 0;

create or replace view keapsync.kpi_top_tags with (security_invoker = true) as
select s.account_id, t.id as tag_id, t.keap_id as tag_keap_id, t.name, s.contacts
from (select account_id, tag_id, sum(contacts)::bigint as contacts from keapsync.kpi_tag_counts
       group by 1, 2 having sum(contacts) <> 0) s
join keap.tags t on t.id = s.tag_id;

-- Totals per account, including orders without an order date.
create view keapsync.kpi_totals with (security_invoker = true) as
select a.id as account_id,
       coalesce((select sum(w.contacts) from keapsync.kpi_contacts_by_week w where w.account_id = a.id), 0)::bigint as contacts,
       coalesce((select sum(m.orders) from keapsync.kpi_orders_by_month m where m.account_id = a.id), 0)::bigint as orders
from keapsync.accounts a;

-- Members read their accounts' summaries, analysts all of them; only the triggers (and the
-- service role) write.
do $policies$
declare
  t text;
begin
  foreach t in array array['kpi_contacts_by_week', 'kpi_orders_by_month', 'kpi_tag_counts', 'kpi_subscription_totals'] loop
    execute format('alter table keapsync.%I enable row level security', t);
    execute format('revoke all on keapsync.%I from public, anon, authenticated, keap_analyst', t);
    execute format('grant select on keapsync.%I to authenticated, keap_analyst', t);
    execute format('create policy members_read on keapsync.%I for select to authenticated
                      using (account_id = any ((select keapsync.my_accounts())::uuid[]))', t);
    execute format('create policy analysts_read on keapsync.%I for select to keap_analyst using (true)', t);
  end loop;
end
$policies$;
grant select on keapsync.kpi_totals to authenticated, keap_analyst, service_role;
grant execute on function keapsync.rebuild_kpi_summaries(uuid) to service_role;
