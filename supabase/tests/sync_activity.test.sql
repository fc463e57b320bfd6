-- Sync activity: changes applied for Keap count as "in" in their UTC hour, pushes Keap accepted
-- and pushed deletes as "out"; local edits count as neither; members see only their accounts.
begin;
create extension if not exists pgtap;
select plan(11);

insert into auth.users (id, email) values ('a0000000-0000-4000-8000-00000000000a', 'a@example.com');
insert into keapsync.accounts (id, name) values
  ('aaaaaaaa-0000-4000-8000-000000000000', 'A'), ('bbbbbbbb-0000-4000-8000-000000000000', 'B');
insert into keapsync.members (account_id, user_id, role) values
  ('aaaaaaaa-0000-4000-8000-000000000000', 'a0000000-0000-4000-8000-00000000000a', 'admin');
insert into keapsync.settings (account_id) values
  ('aaaaaaaa-0000-4000-8000-000000000000'), ('bbbbbbbb-0000-4000-8000-000000000000');

create function pg_temp.n(p_account text, p_dir text) returns bigint language sql as $$
  select coalesce(sum(changes), 0)::bigint from keapsync.sync_activity_hourly
   where account_id = p_account::uuid and direction = p_dir and hour = date_trunc('hour', now(), 'UTC')
$$;

select keapsync.apply_keap_records('aaaaaaaa-0000-4000-8000-000000000000', 'contact',
  '[{"id": 1, "given_name": "One", "last_updated": "2026-01-01T00:00:00Z"},
    {"id": 2, "given_name": "Two", "last_updated": "2026-01-01T00:00:00Z"}]');
select keapsync.apply_keap_record('bbbbbbbb-0000-4000-8000-000000000000', 'contact',
  '{"id": 1, "given_name": "B", "last_updated": "2026-01-01T00:00:00Z"}');
select is(pg_temp.n('aaaaaaaa-0000-4000-8000-000000000000', 'in'), 2::bigint, 'two records applied for Keap: 2 in');
select is(pg_temp.n('bbbbbbbb-0000-4000-8000-000000000000', 'in'), 1::bigint, 'another account counts apart');

-- The same version again changes nothing, so nothing came in.
select keapsync.apply_keap_record('aaaaaaaa-0000-4000-8000-000000000000', 'contact',
  '{"id": 1, "given_name": "One", "last_updated": "2026-01-01T00:00:00Z"}');
select is(pg_temp.n('aaaaaaaa-0000-4000-8000-000000000000', 'in'), 2::bigint, 'an echo is not activity');

-- A local edit is not activity until Keap accepts its push. (Each apply marked this transaction as
-- Keap's writer; in the sync each runs in a transaction of its own: a local writer again.)
select set_config('keapsync.origin', '', true);
update keap.contacts set given_name = 'Uno' where account_id = 'aaaaaaaa-0000-4000-8000-000000000000' and keap_id = 1;
select is(pg_temp.n('aaaaaaaa-0000-4000-8000-000000000000', 'out'), 0::bigint, 'a local edit alone is not out');
select keapsync.mark_pushed('aaaaaaaa-0000-4000-8000-000000000000', 'contact',
  (select id from keap.contacts where account_id = 'aaaaaaaa-0000-4000-8000-000000000000' and keap_id = 1),
  '{"given_name": "Uno"}', '{"id": 1, "given_name": "Uno", "last_updated": "2026-01-01T00:00:01Z"}');
select is(pg_temp.n('aaaaaaaa-0000-4000-8000-000000000000', 'out'), 1::bigint, 'a push Keap accepted: 1 out');
select is(pg_temp.n('aaaaaaaa-0000-4000-8000-000000000000', 'in'), 2::bigint, 'Keap''s answer to our push (its clock moved) is not in');

-- A pushed delete (mark_pushed left this transaction marked as Keap's writer: a local one again).
select set_config('keapsync.origin', '', true);
update keapsync.settings set propagate_deletes = true where account_id = 'aaaaaaaa-0000-4000-8000-000000000000';
delete from keap.contacts where account_id = 'aaaaaaaa-0000-4000-8000-000000000000' and keap_id = 2;
select keapsync.mark_pushed('aaaaaaaa-0000-4000-8000-000000000000', 'contact',
  (select local_id from keapsync.sync_state where account_id = 'aaaaaaaa-0000-4000-8000-000000000000' and keap_id = 2),
  null, null);
select is(pg_temp.n('aaaaaaaa-0000-4000-8000-000000000000', 'out'), 2::bigint, 'a pushed delete: 2 out');

-- One bucket per account, direction and hour, however many statements wrote it.
select is((select count(*) from keapsync.sync_activity_hourly where account_id = 'aaaaaaaa-0000-4000-8000-000000000000'),
          2::bigint, 'one bucket per direction this hour');

-- Compaction makes each bucket one row and keeps its sum.
select keapsync.compact_sync_activity();
select is((select count(*) from keapsync.sync_activity where account_id = 'aaaaaaaa-0000-4000-8000-000000000000'),
          2::bigint, 'compacted: one row per bucket');
select is(pg_temp.n('aaaaaaaa-0000-4000-8000-000000000000', 'in') + pg_temp.n('aaaaaaaa-0000-4000-8000-000000000000', 'out'),
          4::bigint, 'compaction keeps the sums');

-- As a member of A (pgTAP's functions are not theirs to call: read first, compare as ourselves).
set local role authenticated;
select set_config('request.jwt.claims', '{"role": "authenticated", "sub": "a0000000-0000-4000-8000-00000000000a"}', true);
select set_config('test.seen', (select array_agg(distinct account_id::text)::text from keapsync.sync_activity_hourly), true);
reset role;
select is(current_setting('test.seen'), '{aaaaaaaa-0000-4000-8000-000000000000}', 'a member sees only their account');

select * from finish();
rollback;
