-- A write that changes nothing leaves nothing behind, and one that changes something still
-- leaves all of it (migration 20261204120000): an apply that keeps a contact's tags runs no
-- statement on its tags, a statement that touches no row records no history, and a bulk
-- update records one history row and one change stamp per row it changed.
begin;
create extension if not exists pgtap;
select plan(9);

insert into keapsync.accounts (id, name) values ('16000000-0000-4000-8000-000000000001', 'No-op');

select is((keapsync.apply_keap_page('16000000-0000-4000-8000-000000000001', 'contact', array[
  '{"id": 1, "given_name": "Ada", "tag_ids": [11, 12], "last_updated": "2026-01-02T00:00:00Z"}'::jsonb,
  '{"id": 2, "given_name": "Bo", "tag_ids": [12], "last_updated": "2026-01-02T00:00:00Z"}'::jsonb]) ->> 'inserted')::int,
  2, 'two contacts inserted');

create temp table seen as select max(id) as last from keapsync.change_history;
-- The history written since the mark, as (table, op) pairs.
create function pg_temp.since() returns setof text language sql as $$
  select h.table_name || ' ' || h.op from keapsync.change_history h where h.id > (select last from seen) order by h.id
$$;
create function pg_temp.mark() returns void language sql as $$
  update seen set last = (select max(id) from keapsync.change_history)
$$;
-- The contact's tags as Keap ids.
create function pg_temp.tags_of(p_keap_id bigint) returns bigint[] language sql as $$
  select array_agg(tg.keap_id order by tg.keap_id) from keap.contact_tags ct
    join keap.tags tg on tg.id = ct.tag_id join keap.contacts c on c.id = ct.contact_id
   where c.keap_id = p_keap_id
$$;

select is(keapsync.apply_keap_record('16000000-0000-4000-8000-000000000001', 'contact',
  '{"id": 1, "given_name": "Ada", "job_title": "CEO", "tag_ids": [12, 11], "last_updated": "2026-01-03T00:00:00Z"}'),
  'updated', 'a newer version with the same tags applies');
select results_eq($$select * from pg_temp.since()$$, array['contacts update'],
  'it records the contact''s update and nothing on its tags');

select pg_temp.mark();
select is(keapsync.apply_keap_record('16000000-0000-4000-8000-000000000001', 'contact',
  '{"id": 1, "given_name": "Ada", "job_title": "CEO", "tag_ids": [12, 13], "last_updated": "2026-01-04T00:00:00Z"}'),
  'updated', 'a version with a tag taken off and a new one put on applies');
select is(pg_temp.tags_of(1), array[12, 13]::bigint[], 'the contact has the version''s tags');
select results_eq($$select * from pg_temp.since() order by 1$$,
  array['contact_tags delete', 'contact_tags insert', 'contacts update', 'tags insert'],
  'the tag taken off, the tag put on and the tag first met are recorded, with the update');

select pg_temp.mark();
update keap.contacts set job_title = 'Nobody' where false;
delete from keap.contact_tags where false;
select is_empty($$select * from pg_temp.since()$$, 'statements that touch no row record nothing');

-- A local bulk update (the applies above set the transaction's origin to Keap's): each row's
-- change once, each row's stamp for the field it changed.
select keapsync.set_origin('local');
update keap.contacts set job_title = 'Bulk ' || keap_id where account_id = '16000000-0000-4000-8000-000000000001';
select results_eq(
  $$select h.keap_id, h.changed -> 'job_title' ->> 'new' from keapsync.change_history h
     where h.id > (select last from seen) and h.table_name = 'contacts' order by h.keap_id$$,
  $$values (1::bigint, 'Bulk 1'), (2::bigint, 'Bulk 2')$$,
  'a bulk update records each row it changed once');
select results_eq(
  $$select s.keap_id, s.local_changed_at ? 'job_title' from keapsync.sync_state s
     where s.account_id = '16000000-0000-4000-8000-000000000001' and s.object_type = 'contact' order by s.keap_id$$,
  $$values (1::bigint, true), (2::bigint, true)$$,
  'and stamps the field it changed on each row');

select * from finish();
rollback;
