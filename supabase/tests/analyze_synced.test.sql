-- keapsync.analyze_synced gives the planner statistics of what a backfill filled (the type's
-- table and keapsync.sync_state) where the sidecar, which owns no table, could not analyze them;
-- it names tables only through keapsync.object_types, and only the sidecar and the service call it.
begin;
create extension if not exists pgtap;
select plan(6);

insert into keapsync.accounts (id, name) values ('17000000-0000-4000-8000-00000000000a', 'Analyzed');
select keapsync.apply_keap_page('17000000-0000-4000-8000-00000000000a', 'contact',
  array(select jsonb_build_object('id', i, 'given_name', 'C' || i, 'last_updated', '2026-01-02T00:00:00Z')
          from generate_series(1, 37) i));

set local role keapsync_sidecar;
select lives_ok($$select keapsync.analyze_synced('contact')$$, 'the sidecar analyzes what a backfill filled');
reset role;
select is((select reltuples::bigint from pg_class where oid = 'keap.contacts'::regclass),
          (select count(*) from keap.contacts), 'the type''s table has statistics');
select is((select reltuples::bigint from pg_class where oid = 'keapsync.sync_state'::regclass),
          (select count(*) from keapsync.sync_state), 'so has the sync state');

select throws_ok($$select keapsync.analyze_synced('contacts; drop table keap.contacts')$$, '22023', null,
                 'a name that is not an object type is refused');
set local role authenticated;
select throws_ok($$select keapsync.analyze_synced('contact')$$, '42501', null, 'a signed-in user cannot call it');
reset role;
set local role anon;
select throws_ok($$select keapsync.analyze_synced('contact')$$, '42501', null, 'nor can anon');
reset role;

select * from finish();
rollback;
