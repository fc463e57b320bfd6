-- The set-based batch apply used by backfill and reconcile agrees with the per-record apply.
begin;
create extension if not exists pgtap;
select plan(10);

insert into keapsync.accounts (id, name) values ('50000000-0000-4000-8000-000000000005', 'Batch');

select is(keapsync.apply_keap_batch('50000000-0000-4000-8000-000000000005', 'contact',
  '[{"id": 1, "given_name": "A", "tag_ids": [7], "custom_fields": [{"id": 3, "content": "x"}], "last_updated": "2026-01-01T00:00:00.000Z"},
    {"id": 2, "given_name": "B", "last_updated": "2026-01-01T00:00:00.000Z"},
    {"id": 2, "given_name": "B older", "last_updated": "2025-12-01T00:00:00.000Z"}]'),
  '{"inserted": 2}'::jsonb, 'new records insert in one statement, the newest copy of a duplicate id wins');
select is((select given_name from keap.contacts where keap_id = 2), 'B', 'the older duplicate did not land');
select is((select agreed from keapsync.sync_state where keap_id = 1),
          '{"tag.7": true, "given_name": "A", "custom_fields.3": "x"}'::jsonb, 'agreed state as the per-record apply would record it');
select is((select count(*) from keap.contact_tags ct join keap.tags t on t.id = ct.tag_id where t.keap_id = 7)::int, 1, 'tags applied');
select is((select sync_origin from keap.contacts where keap_id = 1), 'keap', 'batch rows are marked as Keap''s');

update keap.contacts set family_name = 'Local' where keap_id = 1;
select is(keapsync.apply_keap_batch('50000000-0000-4000-8000-000000000005', 'contact',
  '[{"id": 1, "given_name": "A2", "last_updated": "2026-01-02T00:00:00.000Z"},
    {"id": 2, "given_name": "B", "last_updated": "2026-01-01T00:00:00.000Z"},
    {"id": 3, "given_name": "C", "last_updated": "2026-01-01T00:00:00.000Z"}]'),
  '{"inserted": 1, "updated": 1, "duplicate": 1}'::jsonb, 'known records merge one by one, new ones insert');
select is((select given_name || '/' || family_name from keap.contacts where keap_id = 1), 'A2/Local',
          'the merge keeps the local edit and takes Keap''s');
select throws_ok($$select keapsync.apply_keap_batch('50000000-0000-4000-8000-000000000005', 'contact', '[{"given_name": "no id"}]')$$,
                 '22023', null, 'a record without an id refuses the whole page');
select throws_ok($$select keapsync.apply_keap_batch('50000000-0000-4000-8000-000000000005', 'contact', '{"id": 1}')$$,
                 '22023', null, 'a page must be an array');

select is(keapsync.apply_keap_batch('50000000-0000-4000-8000-000000000005', 'order',
  '[{"id": 1, "title": "O", "total": 10, "modification_date": "2026-01-01T00:00:00.000Z"}]'),
  '{"inserted": 1}'::jsonb, 'types without a map column batch too');

select * from finish();
rollback;
