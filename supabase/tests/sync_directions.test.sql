-- Sync direction per account and object type: a row for every pair, changes audited, local
-- writes to a type that does not sync both ways refused, Keap's own writes let through.
begin;
create extension if not exists pgtap;
select plan(11);

insert into auth.users (id, email) values ('d0000000-0000-4000-8000-0000000000ad', 'admin-d@example.com');
insert into keapsync.accounts (id, name) values ('d0000000-0000-4000-8000-000000000001', 'D');
insert into keapsync.members (account_id, user_id, role)
values ('d0000000-0000-4000-8000-000000000001', 'd0000000-0000-4000-8000-0000000000ad', 'admin');

select is((select count(*)::int from keapsync.sync_directions where account_id = 'd0000000-0000-4000-8000-000000000001'),
          (select count(*)::int from keapsync.object_types), 'a new account has a direction for every object type');
select is((select count(*)::int from keapsync.sync_directions where account_id = 'd0000000-0000-4000-8000-000000000001' and direction <> 'both'),
          0, 'all both ways to start with');
select is((select count(*)::int from keapsync.change_history where table_name = 'sync_directions'), 0,
          'the defaults are not recorded as changes');

select keapsync.apply_keap_record('d0000000-0000-4000-8000-000000000001', 'contact',
  '{"id": 7, "given_name": "K", "last_updated": "2026-01-01T00:00:00Z"}');
select set_config('keapsync.origin', '', true);  -- the apply marked the transaction as Keap's

-- An admin switches contacts to Keap → Postgres only, as themselves.
set local role authenticated;
select set_config('request.jwt.claims', '{"role": "authenticated", "sub": "d0000000-0000-4000-8000-0000000000ad"}', true);
update keapsync.sync_directions set direction = 'keap_to_postgres'
 where account_id = 'd0000000-0000-4000-8000-000000000001' and object_type = 'contact';
reset role;
select is((select changed -> 'direction' from keapsync.change_history where table_name = 'sync_directions'),
          '{"old": "both", "new": "keap_to_postgres"}'::jsonb, 'the change is in the history');
select is((select actor from keapsync.change_history where table_name = 'sync_directions'),
          'd0000000-0000-4000-8000-0000000000ad'::uuid, 'with who made it');

select throws_ok($$update keap.contacts set given_name = 'L' where account_id = 'd0000000-0000-4000-8000-000000000001'$$,
                 '25006', null, 'a local edit of a Keap → Postgres type is refused');
select throws_ok($$insert into keap.contacts (account_id, given_name) values ('d0000000-0000-4000-8000-000000000001', 'N')$$,
                 '25006', null, 'so is a local insert');
select throws_ok($$delete from keap.contacts where account_id = 'd0000000-0000-4000-8000-000000000001'$$,
                 '25006', null, 'and a local delete');
select is(keapsync.apply_keap_record('d0000000-0000-4000-8000-000000000001', 'contact',
            '{"id": 7, "given_name": "K2", "last_updated": "2026-01-02T00:00:00Z"}'),
          'updated', 'Keap''s edits still arrive');
select set_config('keapsync.origin', '', true);
select lives_ok($$insert into keap.orders (account_id, title) values ('d0000000-0000-4000-8000-000000000001', 'local')$$,
                'other types still take local writes');

update keapsync.sync_directions set direction = 'off'
 where account_id = 'd0000000-0000-4000-8000-000000000001' and object_type = 'order';
select throws_ok($$update keap.orders set title = 'x' where account_id = 'd0000000-0000-4000-8000-000000000001'$$,
                 '25006', null, 'a type that is off takes no local writes either');

select * from finish();
rollback;
