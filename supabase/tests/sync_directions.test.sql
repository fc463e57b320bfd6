-- Sync direction per account and object type: a row for every pair, changes audited, local
-- writes to a type that does not sync both ways refused, Keap's own writes let through.
-- Every pushed type's table carries that guard (a type added without it fails here).
begin;
create extension if not exists pgtap;
select plan(14);

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

-- Every type whose local changes are pushed (its table in the keapsync_push publication) has the
-- guard, for inserts, updates and deletes, naming its own type; so does a part table (contact_tags)
-- for its owner's. A type added without it fails here.
select is(array(select t.table_name from keapsync.object_types t
                 where exists (select 1 from pg_publication_tables p
                                where p.pubname = 'keapsync_push' and p.schemaname = 'keap' and p.tablename = t.table_name)
                   and not exists (select 1 from pg_trigger g
                                    where g.tgrelid = format('keap.%I', t.table_name)::regclass
                                      and g.tgfoid = 'keapsync.tg_guard_direction'::regproc
                                      and g.tgtype & 31 = 31  -- row, before, insert, delete, update
                                      and g.tgenabled <> 'D' and g.tgnargs = 1
                                      and encode(g.tgargs, 'escape') = t.object_type || '\000')
                 order by 1),
          '{}'::text[], 'every pushed type''s table guards its direction against local inserts, updates and deletes');
select is(array(select p.tablename::text from pg_publication_tables p
                 where p.pubname = 'keapsync_push' and p.schemaname = 'keap'
                   and not exists (select 1 from pg_trigger g
                                    where g.tgrelid = format('keap.%I', p.tablename)::regclass
                                      and g.tgfoid = 'keapsync.tg_guard_direction'::regproc
                                      and g.tgtype & 31 = 31 and g.tgenabled <> 'D')
                 order by 1),
          '{}'::text[], 'every table the push publication carries has one, a part table (contact_tags) included');

-- And it does refuse: each pushed type in turn set to Keap → Postgres only, the others both ways,
-- a local insert into its table is refused. The names of those that took it come back.
create function pg_temp.not_refused(p_account uuid) returns text[] language plpgsql as $$
declare
  t record;
  out text[] := '{}';
begin
  update keapsync.sync_directions set direction = 'both' where account_id = p_account;
  for t in select o.object_type, o.table_name from keapsync.object_types o
            where exists (select 1 from pg_publication_tables p
                           where p.pubname = 'keapsync_push' and p.schemaname = 'keap' and p.tablename = o.table_name)
            order by 1 loop
    update keapsync.sync_directions set direction = 'keap_to_postgres' where account_id = p_account and object_type = t.object_type;
    begin
      execute format('insert into keap.%I (account_id) values ($1)', t.table_name) using p_account;
      out := out || t.table_name;
      raise exception using errcode = 'P0001';  -- undo it
    exception
      when read_only_sql_transaction then null;
      when raise_exception then null;
      when others then out := out || (t.table_name || ': ' || sqlerrm);
    end;
    update keapsync.sync_directions set direction = 'both' where account_id = p_account and object_type = t.object_type;
  end loop;
  return out;
end;
$$;
select set_config('keapsync.origin', '', true);
select is(pg_temp.not_refused('d0000000-0000-4000-8000-000000000001'), '{}'::text[],
          'a local insert into any pushed type''s table is refused while it syncs Keap → Postgres only');

select * from finish();
rollback;
