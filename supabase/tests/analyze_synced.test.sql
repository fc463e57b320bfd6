-- keapsync.analyze_synced gives the planner statistics of what a backfill filled (the type's
-- table and keapsync.sync_state) where the sidecar, which owns no table, could not analyze them;
-- it names tables only through keapsync.object_types, and only the sidecar and the service call it.
begin;
create extension if not exists pgtap;
select plan(6);

-- Companies, not contacts: ANALYZE writes a table's size into pg_class in place, which this file's
-- rollback keeps, and a later file in the same database then plans for a table of a few rows.
-- page_apply.test.sql counts the scans of keap.contacts under the plans a first backfill gets,
-- and failed when this file had analyzed 37 contacts before it.
insert into keapsync.accounts (id, name) values ('17000000-0000-4000-8000-00000000000a', 'Analyzed');
select keapsync.apply_keap_page('17000000-0000-4000-8000-00000000000a', 'company',
  array(select jsonb_build_object('id', i, 'company_name', 'C' || i, 'update_time', '2026-01-02T00:00:00Z')
          from generate_series(1, 37) i));

set local role keapsync_sidecar;
select lives_ok($$select keapsync.analyze_synced('company')$$, 'the sidecar analyzes what a backfill filled');
reset role;
select is((select reltuples::bigint from pg_class where oid = 'keap.companies'::regclass),
          (select count(*) from keap.companies), 'the type''s table has statistics');
select is((select reltuples::bigint from pg_class where oid = 'keapsync.sync_state'::regclass),
          (select count(*) from keapsync.sync_state), 'so has the sync state');

select throws_ok($$select keapsync.analyze_synced('contacts; drop table keap.contacts')$$, '22023', null,
                 'a name that is not an object type is refused');
set local role authenticated;
select throws_ok($$select keapsync.analyze_synced('company')$$, '42501', null, 'a signed-in user cannot call it');
reset role;
set local role anon;
select throws_ok($$select keapsync.analyze_synced('company')$$, '42501', null, 'nor can anon');
reset role;

select * from finish();
rollback;
