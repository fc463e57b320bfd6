-- The KPI summaries equal a from-scratch aggregate of their source tables after every kind of
-- write: single and multi-row statements, updates that move rows between buckets and accounts,
-- deletes (direct and cascaded), upserts, writable CTEs, rolled-back savepoints, truncates, an
-- interleaved random sequence, writers in another time zone or in replica mode; and the views
-- that read them return what the old aggregating views returned.
begin;
create extension if not exists pgtap;
select plan(36);

-- ---- the oracle: what a GROUP BY over the source tables returns --------------------------------
create function pg_temp.truth() returns table (summary text, k1 uuid, k2 text, v text) language sql as $$
  select 'weeks', account_id, date_trunc('week', coalesce(date_created, created_at) at time zone 'UTC')::text, count(*)::text
    from keap.contacts group by 1, 2, 3
  union all
  select 'months', account_id, date_trunc('month', order_date at time zone 'UTC')::text,
         concat_ws('/', count(*), trim_scale(coalesce(sum(total), 0)), trim_scale(coalesce(sum(total_paid), 0)))
    from keap.orders group by 1, 2, 3
  union all
  select 'tags', account_id, tag_id::text, count(*)::text from keap.contact_tags group by 1, 2, 3
  union all
  select 'subscriptions', account_id, null, concat_ws('/', count(*), count(*) filter (where active), round(coalesce(sum(
           case billing_cycle
             when 'YEAR' then billing_amount / 12.0 / greatest(coalesce(billing_frequency, 1), 1)
             when 'MONTH' then billing_amount / greatest(coalesce(billing_frequency, 1), 1)
             when 'WEEK' then billing_amount * 52.0 / 12.0 / greatest(coalesce(billing_frequency, 1), 1)
             when 'DAY' then billing_amount * 365.0 / 12.0 / greatest(coalesce(billing_frequency, 1), 1)
           end * coalesce(quantity, 1)) filter (where active), 0), 2))
    from keap.subscriptions group by 1, 2, 3
$$;
-- A bucket may be several rows while writers overlap; its sum is what counts.
create function pg_temp.summaries() returns table (summary text, k1 uuid, k2 text, v text) language sql as $$
  select 'weeks', account_id, (week at time zone 'UTC')::text, sum(contacts)::text
    from keapsync.kpi_contacts_by_week group by 1, 2, 3 having sum(contacts) <> 0
  union all
  select 'months', account_id, (month at time zone 'UTC')::text, concat_ws('/', sum(orders), trim_scale(sum(revenue)), trim_scale(sum(paid)))
    from keapsync.kpi_orders_by_month group by 1, 2, 3 having sum(orders) <> 0 or sum(revenue) <> 0 or sum(paid) <> 0
  union all
  select 'tags', account_id, tag_id::text, sum(contacts)::text from keapsync.kpi_tag_counts group by 1, 2, 3 having sum(contacts) <> 0
  union all
  select 'subscriptions', account_id, null, concat_ws('/', sum(subscriptions), sum(active), round(sum(mrr), 2))
    from keapsync.kpi_subscription_totals group by 1, 2, 3 having sum(subscriptions) <> 0
$$;
-- Rows beyond one per bucket (none when writers do not overlap, as in this single session) and
-- buckets left summing to zero.
create function pg_temp.loose_rows() returns bigint language sql as $$
  select (select count(*) - count(distinct (account_id, week)) from keapsync.kpi_contacts_by_week)
       + (select count(*) - count(distinct (account_id, coalesce(month, '-infinity'))) from keapsync.kpi_orders_by_month)
       + (select count(*) - count(distinct (account_id, tag_id)) from keapsync.kpi_tag_counts)
       + (select count(*) - count(distinct account_id) from keapsync.kpi_subscription_totals)
       + (select count(*) from keapsync.kpi_contacts_by_week where contacts = 0)
       + (select count(*) from keapsync.kpi_orders_by_month where orders = 0 and revenue = 0 and paid = 0)
       + (select count(*) from keapsync.kpi_tag_counts where contacts = 0)
       + (select count(*) from keapsync.kpi_subscription_totals where subscriptions = 0)
$$;
-- Amounts compare as numbers (trim_scale): 0 and 0.00 are the same revenue.
-- Rows that differ, both ways, as text for the failure message ('' when equal).
create function pg_temp.drift() returns text language sql as $$
  select coalesce(string_agg(side || ' ' || summary || ' ' || k1 || ' ' || coalesce(k2, '-') || ' = ' || v, E'\n'), '') from (
    (select 'missing', * from pg_temp.truth() except select 'missing', * from pg_temp.summaries())
    union all
    (select 'extra', * from pg_temp.summaries() except select 'extra', * from pg_temp.truth())) d(side, summary, k1, k2, v)
$$;

set local timezone = 'UTC';
insert into keapsync.accounts (id, name) values
  ('a1000000-0000-4000-8000-000000000001', 'A'), ('b1000000-0000-4000-8000-000000000002', 'B');
create temp table acct as select id, name from keapsync.accounts where name in ('A', 'B');

select is(pg_temp.drift(), '', 'empty tables, empty summaries');

-- ---- through the sync's own apply functions ----------------------------------------------------
select keapsync.apply_keap_records(id, 'contact', (select jsonb_agg(jsonb_build_object(
         'id', g, 'given_name', 'C' || g, 'tag_ids', jsonb_build_array(1 + g % 3, 4),
         'date_created', to_char(timestamptz '2026-01-05' + g * interval '1 day', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
         'last_updated', '2026-06-01T00:00:00.000Z')) from generate_series(1, 40) g))
  from acct;
select keapsync.apply_keap_records(id, 'order', (select jsonb_agg(jsonb_build_object(
         'id', g, 'title', 'O' || g, 'total', 10 * g, 'total_paid', 5 * g,
         'order_date', to_char(timestamptz '2026-01-15' + g * interval '9 days', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
         'modification_date', '2026-06-01T00:00:00.000Z')) from generate_series(1, 20) g))
  from acct;
select keapsync.apply_keap_records(id, 'subscription', (select jsonb_agg(jsonb_build_object(
         'id', g, 'active', g % 4 <> 0, 'billing_amount', 30 + g, 'quantity', 1 + g % 2,
         'billing_cycle', (array['MONTH', 'YEAR', 'WEEK', 'DAY', 'NEVER'])[1 + g % 5], 'billing_frequency', g % 3))
         from generate_series(1, 15) g))
  from acct;
select is(pg_temp.drift(), '', 'after applying Keap pages (contacts with tags, orders, subscriptions)');
select cmp_ok((select count(*) from keapsync.kpi_contacts_by_week), '>', 10::bigint, 'contacts spread over many weeks');
select keapsync.apply_keap_record(id, 'contact', '{"id": 3, "given_name": "C3", "tag_ids": [2], "date_created": "2025-01-01T00:00:00Z", "last_updated": "2026-07-01T00:00:00.000Z"}')
  from acct;
select is(pg_temp.drift(), '', 'after a Keap update that moves a contact to another week and changes its tags');

-- ---- local SQL ----------------------------------------------------------------------------------
insert into keap.contacts (account_id, given_name, date_created)
select a.id, 'bulk', timestamptz '2026-03-02' + (g % 17) * interval '5 days'
  from acct a, generate_series(1, 500) g;
select is(pg_temp.drift(), '', 'a 1000-row insert over two accounts in one statement');
insert into keap.contacts (account_id, given_name) values ((select id from acct where name = 'A'), 'no date');
select is(pg_temp.drift(), '', 'a contact without date_created counts in the week it was created here');

update keap.contacts set date_created = date_created + interval '3 weeks' where given_name = 'bulk' and id % 3 = 0;
select is(pg_temp.drift(), '', 'an update moving rows to other weeks');
update keap.contacts set account_id = (select id from acct where name = 'B')
 where given_name = 'bulk' and account_id = (select id from acct where name = 'A') and id % 5 = 0;
select is(pg_temp.drift(), '', 'an update moving rows to another account');
create temp table before_noop as select * from pg_temp.summaries();
update keap.contacts set job_title = 'Untouched buckets' where given_name = 'bulk';
select is(pg_temp.drift(), '', 'an update of other columns');
select set_eq('select * from pg_temp.summaries()', 'select * from before_noop', '... leaves the summaries as they were');
update keap.contacts set date_created = null where given_name = 'bulk' and id % 7 = 0;
select is(pg_temp.drift(), '', 'an update clearing date_created falls back to created_at');

delete from keap.contacts where given_name = 'bulk' and id % 2 = 0;
select is(pg_temp.drift(), '', 'a multi-row delete');
delete from keap.contacts where date_trunc('week', coalesce(date_created, created_at) at time zone 'UTC') =
  (select min(week at time zone 'UTC') from keapsync.kpi_contacts_by_week where account_id = (select id from acct where name = 'A'))
  and account_id = (select id from acct where name = 'A');
select is(pg_temp.drift(), '', 'emptying a week removes its bucket');

insert into keap.contacts (account_id, keap_id, given_name, date_created)
select a.id, g, 'upserted', timestamptz '2024-06-01' from acct a, generate_series(35, 45) g
on conflict (account_id, keap_id) do update set date_created = excluded.date_created, given_name = excluded.given_name;
select is(pg_temp.drift(), '', 'insert ... on conflict do update (new and existing rows in one statement)');

with moved as (delete from keap.contacts where given_name = 'upserted' and keap_id > 40 returning account_id, keap_id)
insert into keap.contacts (account_id, keap_id, given_name, date_created)
select account_id, keap_id + 1000, 'moved', timestamptz '2023-02-01' from moved;
select is(pg_temp.drift(), '', 'a writable CTE deleting and inserting in one statement');

savepoint s1;
delete from keap.contacts;
delete from keap.orders;
select is((select count(*) from keapsync.kpi_contacts_by_week) + (select count(*) from keapsync.kpi_orders_by_month), 0::bigint,
          'deleting everything empties the summaries');
rollback to savepoint s1;
select is(pg_temp.drift(), '', 'a rolled-back savepoint rolls the summaries back too');

-- Orders: the amounts, the bucket, and orders without a date.
update keap.orders set total = total + 1.5 where keap_id % 2 = 0;
select is(pg_temp.drift(), '', 'an update of order totals within the same month');
update keap.orders set order_date = null where keap_id % 5 = 0;
update keap.orders set order_date = order_date - interval '40 days' where keap_id % 3 = 0;
insert into keap.orders (account_id, title, total) values ((select id from acct where name = 'A'), 'undated', 7);
select is(pg_temp.drift(), '', 'orders moving months, losing their date, and new undated orders');
select is((select orders from keapsync.kpi_totals where account_id = (select id from acct where name = 'A')),
          (select count(*) from keap.orders where account_id = (select id from acct where name = 'A')),
          'kpi_totals counts undated orders too');

-- Tags: direct, cascaded from a deleted tag and from deleted contacts, and a tag moving.
insert into keap.contact_tags (account_id, contact_id, tag_id)
select c.account_id, c.id, t.id from keap.contacts c join keap.tags t on t.account_id = c.account_id and t.keap_id = 4
 where c.given_name = 'bulk'
on conflict do nothing;
update keap.contact_tags set tag_id = (select id from keap.tags t where t.account_id = contact_tags.account_id and t.keap_id = 1)
 where tag_id in (select id from keap.tags where keap_id = 2)
   and not exists (select 1 from keap.contact_tags x where x.contact_id = contact_tags.contact_id
                      and x.tag_id = (select id from keap.tags t where t.account_id = contact_tags.account_id and t.keap_id = 1));
select is(pg_temp.drift(), '', 'tags applied in bulk and moved to another tag');
delete from keap.tags where keap_id = 3;
delete from keap.contacts where given_name = 'bulk' and id % 3 = 1;
select is(pg_temp.drift(), '', 'tag counts follow cascaded deletes (a tag, tagged contacts)');

-- Subscriptions: activity, cycle, amount.
update keap.subscriptions set active = not active where keap_id % 3 = 0;
update keap.subscriptions set billing_cycle = 'YEAR', billing_amount = billing_amount * 10 where keap_id % 4 = 1;
delete from keap.subscriptions where keap_id = 2;
select is(pg_temp.drift(), '', 'subscriptions switched on and off, repriced and deleted');
select is((select mrr from keapsync.kpi_subscriptions where account_id = (select id from acct where name = 'B')),
          (select round(coalesce(sum(case billing_cycle when 'YEAR' then billing_amount / 12.0 / greatest(coalesce(billing_frequency, 1), 1)
                                                       when 'MONTH' then billing_amount / greatest(coalesce(billing_frequency, 1), 1)
                                                       when 'WEEK' then billing_amount * 52.0 / 12.0 / greatest(coalesce(billing_frequency, 1), 1)
                                                       when 'DAY' then billing_amount * 365.0 / 12.0 / greatest(coalesce(billing_frequency, 1), 1) end
                                                  * coalesce(quantity, 1)) filter (where active), 0), 2)
             from keap.subscriptions where account_id = (select id from acct where name = 'B')),
          'kpi_subscriptions.mrr as the old view computed it');

-- ---- an interleaved sequence: many small statements over both accounts -------------------------
select setseed(0.42);
do $$
declare
  i int;
  a uuid;
  r float8;
begin
  for i in 1 .. 300 loop
    a := (select id from acct order by random() limit 1);
    r := random();
    if r < 0.3 then
      insert into keap.contacts (account_id, given_name, date_created)
      values (a, 'seq', timestamptz '2026-01-01' + (random() * 200)::int * interval '1 day');
    elsif r < 0.5 then
      update keap.contacts set date_created = date_created + (random() * 60 - 30)::int * interval '1 day'
       where id = (select id from keap.contacts where given_name = 'seq' order by random() limit 1);
    elsif r < 0.6 then
      update keap.contacts set account_id = a where id = (select id from keap.contacts where given_name = 'seq' order by random() limit 1);
    elsif r < 0.75 then
      delete from keap.contacts where id = (select id from keap.contacts where given_name = 'seq' order by random() limit 1);
    elsif r < 0.85 then
      insert into keap.orders (account_id, title, total, total_paid, order_date)
      values (a, 'seq', (random() * 100)::numeric(14, 2), 0, timestamptz '2026-01-01' + (random() * 300)::int * interval '1 day');
    elsif r < 0.95 then
      update keap.orders set total_paid = total, order_date = order_date + interval '1 month'
       where id = (select id from keap.orders where title = 'seq' order by random() limit 1);
    else
      delete from keap.orders where id = (select id from keap.orders where title = 'seq' order by random() limit 1);
    end if;
  end loop;
end $$;
select is(pg_temp.drift(), '', '300 interleaved single-row inserts, moves and deletes');
select is(pg_temp.loose_rows(), 0::bigint, 'one row per bucket, and no empty buckets, after all that');

-- ---- whoever writes ------------------------------------------------------------------------------
set local timezone = 'Pacific/Auckland';
insert into keap.contacts (account_id, given_name, date_created)
values ((select id from acct where name = 'A'), 'far east', timestamptz '2026-04-05 23:30:00+00');  -- Monday 11:30 in Auckland
set local timezone = 'UTC';
select is(pg_temp.drift(), '', 'a writer in another time zone buckets in UTC');
set local session_replication_role = replica;
insert into keap.contacts (account_id, given_name) select id, 'replica' from acct;
update keap.orders set total = total * 2 where title = 'seq';
set local session_replication_role = origin;
select is(pg_temp.drift(), '', 'writes in replica mode (history triggers off) still count');

-- ---- the views read the summaries and answer as before --------------------------------------
select set_eq('select account_id, week, new_contacts from keapsync.kpi_contacts_weekly',
              $$select account_id, date_trunc('week', coalesce(date_created, created_at)), count(*) from keap.contacts group by 1, 2$$,
              'kpi_contacts_weekly');
select set_eq('select account_id, month, orders, revenue, paid from keapsync.kpi_orders_monthly',
              $$select account_id, date_trunc('month', order_date), count(*), coalesce(sum(total), 0) as revenue, coalesce(sum(total_paid), 0) as paid
                  from keap.orders where order_date is not null group by 1, 2$$,
              'kpi_orders_monthly');
select set_eq('select account_id, tag_id, tag_keap_id, name, contacts from keapsync.kpi_top_tags',
              'select ct.account_id, t.id, t.keap_id, t.name, count(*) from keap.contact_tags ct join keap.tags t on t.id = ct.tag_id group by 1, 2, 3, 4',
              'kpi_top_tags');

-- ---- repair, truncate, account deletion ---------------------------------------------------------
update keapsync.kpi_contacts_by_week set contacts = contacts + 100;
delete from keapsync.kpi_tag_counts where account_id = (select id from acct where name = 'B');
select keapsync.rebuild_kpi_summaries((select id from acct where name = 'B'));
select isnt(pg_temp.drift(), '', 'rebuilding one account leaves the others alone');
select keapsync.rebuild_kpi_summaries();
select is(pg_temp.drift(), '', 'rebuild_kpi_summaries() repairs every account');

delete from keapsync.accounts where name = 'B';
select is(pg_temp.drift(), '', 'deleting an account (cascading to its rows) drops its buckets');

truncate keap.contacts cascade;
select is(pg_temp.drift(), '', 'truncate keap.contacts cascade (contact_tags with it)');
truncate keap.orders, keap.subscriptions cascade;
select is((select count(*) from pg_temp.summaries()), 0::bigint, 'truncating every source empties every summary');

select * from finish();
rollback;
