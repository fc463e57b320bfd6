-- keapsync.prune: per-account windows, bounded batches, dry runs; keapsync.stalls: each path
-- stalls when work waits and nothing advanced; keapsync.history_window_of_pruned explains a
-- rollback of a pruned change.
begin;
create extension if not exists pgtap;
select plan(21);

insert into keapsync.accounts (id, name, keap_tenant, credential) values
  ('00000000-0000-4000-8000-0000000000e1', 'one', 'r1', 'api_key'),
  ('00000000-0000-4000-8000-0000000000e2', 'two', 'r2', 'api_key');
insert into keapsync.retention (account_id, processed_days) values ('00000000-0000-4000-8000-0000000000e2', 1);

-- 10 processed deliveries 8 days old and 2 from today, in each account; one pending old one.
insert into keapsync.webhook_inbox (account_id, event_key, object_type, object_ids, payload, received_at, processed_at)
select a, 'contact.edit', 'contact', array[g], '{}'::jsonb, now() - interval '8 days', now() - interval '8 days'
  from unnest(array['00000000-0000-4000-8000-0000000000e1', '00000000-0000-4000-8000-0000000000e2']::uuid[]) a,
       generate_series(1, 10) g
union all
select a, 'contact.edit', 'contact', array[g], '{}'::jsonb, now(), now()
  from unnest(array['00000000-0000-4000-8000-0000000000e1', '00000000-0000-4000-8000-0000000000e2']::uuid[]) a,
       generate_series(1, 2) g;
insert into keapsync.webhook_inbox (account_id, event_key, object_type, object_ids, payload, received_at)
values ('00000000-0000-4000-8000-0000000000e1', 'contact.add', 'contact', array[99], '{}', now() - interval '30 days');
insert into keapsync.oauth_states (state, redirect_uri, expires_at) values ('old', 'http://x', now() - interval '1 second'),
                                                                           ('live', 'http://x', now() + interval '5 minutes');

select results_eq($$select what, rows from keapsync.prune('00000000-0000-4000-8000-0000000000e1', 3, true) order by what$$,
  $$values ('change_history', 0::bigint), ('conflicts', 0::bigint), ('dead_letters', 0::bigint), ('oauth', 1::bigint), ('webhook_inbox', 10::bigint)$$,
  'a dry run counts everything that would go');
select is((select count(*) from keapsync.webhook_inbox), 25::bigint, 'and deletes nothing');
select is((select rows from keapsync.prune('00000000-0000-4000-8000-0000000000e1', 3) where what = 'webhook_inbox'), 3::bigint,
  'a batch deletes at most p_batch rows');
select is((select count(*) from keapsync.oauth_states), 1::bigint, 'expired OAuth states go at once');
select is((select sum(rows)::bigint from keapsync.prune('00000000-0000-4000-8000-0000000000e1', 100) where what = 'webhook_inbox'), 7::bigint,
  'the next batch takes the rest');
select is((select count(*) from keapsync.webhook_inbox where account_id = '00000000-0000-4000-8000-0000000000e1'), 3::bigint,
  'recent and pending deliveries stay');
select is((select count(*) from keapsync.webhook_inbox where account_id = '00000000-0000-4000-8000-0000000000e2'), 12::bigint,
  'another account is untouched');
select is((select rows from keapsync.prune(null, 100, false, now() + interval '1 day 1 minute')
            where what = 'webhook_inbox' and account_id = '00000000-0000-4000-8000-0000000000e2'), 12::bigint,
  'a one-day window applies to its account only (the clock moved a day)');

-- History: a change and its rollback, 100 days old; a recent change.
insert into keapsync.change_history (account_id, table_name, row_id, op, origin, changed, at) values
  ('00000000-0000-4000-8000-0000000000e1', 'contacts', 1, 'update', 'local', '{}', now() - interval '100 days'),
  ('00000000-0000-4000-8000-0000000000e1', 'contacts', 1, 'update', 'rollback', '{}', now() - interval '100 days'),
  ('00000000-0000-4000-8000-0000000000e1', 'contacts', 1, 'update', 'local', '{}', now());
update keapsync.change_history set rolled_back_by = id + 1
 where account_id = '00000000-0000-4000-8000-0000000000e1' and origin = 'local' and at < now() - interval '1 day';
create temp table old_change as select min(id) as id, max(id) as newest from keapsync.change_history
 where account_id = '00000000-0000-4000-8000-0000000000e1';
select is((select rows from keapsync.prune('00000000-0000-4000-8000-0000000000e1', 100) where what = 'change_history'), 2::bigint,
  'history beyond 90 days goes, with the rollback that points at it');
select is(keapsync.history_window_of_pruned((select id from old_change)), 90, 'a pruned change is known to be pruned, with its window');
select is(keapsync.history_window_of_pruned((select newest from old_change)), null, 'a kept change is not');
select is(keapsync.history_window_of_pruned((select newest + 1000 from old_change)), null, 'nor is an id that never was');

-- Stalls: e1 has a pending delivery 30 days old and nothing processed since today.
select is_empty($$select * from keapsync.stalls('15 minutes', '1 hour') where path = 'inbox'$$,
  'deliveries processed within the threshold: no stall');
select results_eq($$select account_id::text, path from keapsync.stalls('15 minutes', '1 hour', now() + interval '1 hour') where path = 'inbox'$$,
  $$values ('00000000-0000-4000-8000-0000000000e1', 'inbox')$$,
  'a due delivery and nothing processed for longer than the threshold: the inbox stalls');
update keapsync.accounts set paused = true where id = '00000000-0000-4000-8000-0000000000e1';
select is_empty($$select * from keapsync.stalls('15 minutes', '1 hour', now() + interval '1 hour')$$,
  'a paused account waits; it is not stalled');

insert into auth.users (id, email) values ('a0000000-0000-4000-8000-0000000000e2', 'two@example.com');
insert into keapsync.members (account_id, user_id, role)
values ('00000000-0000-4000-8000-0000000000e2', 'a0000000-0000-4000-8000-0000000000e2', 'viewer');
update keapsync.accounts set paused = false where id = '00000000-0000-4000-8000-0000000000e1';
update keapsync.webhook_inbox set processed_at = now() - interval '2 hours'
 where account_id = '00000000-0000-4000-8000-0000000000e1' and processed_at is not null;
select is((select count(*) from keapsync.stalls() where path = 'inbox'), 1::bigint, 'the inbox of e1 stalls now');
-- (my_stalls reads the caller from the JWT claims; the role switch itself is privileges.test's.)
select set_config('request.jwt.claims', '{"role": "authenticated", "sub": "a0000000-0000-4000-8000-0000000000e2"}', true);
select results_eq($$select count(*) from keapsync.my_stalls() where path = 'inbox'$$, $$values (0::bigint)$$,
  'a member of another account sees none of its stalls');
insert into keapsync.members (account_id, user_id, role)
values ('00000000-0000-4000-8000-0000000000e1', 'a0000000-0000-4000-8000-0000000000e2', 'viewer');
select results_eq($$select count(*) from keapsync.my_stalls() where path = 'inbox'$$, $$values (1::bigint)$$,
  'a member of the account sees it');
select results_eq($$select keapsync.history_window_of_pruned(id) from old_change$$, $$values (90)$$,
  'a member learns that their account pruned the change');
delete from keapsync.members where user_id = 'a0000000-0000-4000-8000-0000000000e2'
   and account_id = '00000000-0000-4000-8000-0000000000e1';
select results_eq($$select keapsync.history_window_of_pruned(id) from old_change$$, $$values (null::int)$$,
  'a member of another account learns nothing');

select ok(not has_function_privilege('authenticated', 'keapsync.prune(uuid,int,boolean,timestamptz)', 'execute'),
  'only the service role prunes');
select * from finish();
rollback;
