-- keapsync.unchanged_keap_ids (migration 20261204140000): of a sweep's page, the records whose
-- stored Keap object is exactly their JSON (payments and custom fields aside), in one read: a
-- changed record, one never synced, another account's and one of another type are not among them.
begin;
create extension if not exists pgtap;
select plan(4);

insert into keapsync.accounts (id, name) values
  ('16100000-0000-4000-8000-000000000001', 'Unchanged'), ('16100000-0000-4000-8000-000000000002', 'Other');
select keapsync.apply_keap_page('16100000-0000-4000-8000-000000000001', 'contact', array[
  '{"id": 1, "given_name": "Ada", "last_updated": "2026-01-02T00:00:00Z"}'::jsonb,
  '{"id": 2, "given_name": "Bo", "last_updated": "2026-01-02T00:00:00Z"}'::jsonb,
  '{"id": 3, "given_name": "Cy", "last_updated": "2026-01-02T00:00:00Z", "custom_fields": [{"id": 5, "content": "x"}]}'::jsonb]);
select keapsync.apply_keap_page('16100000-0000-4000-8000-000000000002', 'contact', array[
  '{"id": 4, "given_name": "Di", "last_updated": "2026-01-02T00:00:00Z"}'::jsonb]);
-- A row that names a Keap id but was never synced: not unchanged, so the apply takes it up.
insert into keap.contacts (account_id, keap_id, given_name, keap_object)
values ('16100000-0000-4000-8000-000000000001', 5, 'Ed', '{"id": 5, "given_name": "Ed"}');

select results_eq(
  $$select * from keapsync.unchanged_keap_ids('16100000-0000-4000-8000-000000000001', 'contact',
      array[1, 2, 3, 4, 5],
      array['{"id": 1, "given_name": "Ada", "last_updated": "2026-01-02T00:00:00Z"}',
            '{"id": 2, "given_name": "Bob", "last_updated": "2026-01-03T00:00:00Z"}',
            '{"id": 3, "last_updated": "2026-01-02T00:00:00Z", "given_name": "Cy"}',
            '{"id": 4, "given_name": "Di", "last_updated": "2026-01-02T00:00:00Z"}',
            '{"id": 5, "given_name": "Ed"}']) order by 1$$,
  array[1::bigint, 3],
  'the same record, and one whose custom fields the listing lacks, are unchanged; a changed one, another account''s and one never synced are not');
select is_empty(
  $$select * from keapsync.unchanged_keap_ids('16100000-0000-4000-8000-000000000001', 'company',
      array[1], array['{"id": 1, "given_name": "Ada", "last_updated": "2026-01-02T00:00:00Z"}'])$$,
  'a contact''s id and JSON are not an unchanged company');
select is_empty(
  $$select * from keapsync.unchanged_keap_ids('16100000-0000-4000-8000-000000000001', 'contact', '{}', '{}')$$,
  'an empty page has nothing unchanged');
select throws_ok(
  $$select * from keapsync.unchanged_keap_ids('16100000-0000-4000-8000-000000000001', 'contact',
      array[1], array['{"id": 1, "given_name": "A\u0000da"}'])$$,
  '22P05', null, 'a record PostgreSQL cannot read fails the comparison (the caller then applies the page whole)');

select * from finish();
rollback;
