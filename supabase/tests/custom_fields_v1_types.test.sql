-- Custom fields by name for notes and orders (20261204050000_keapsync_orders_notes_custom_fields.sql):
-- their records are v1's (which carry no custom fields) with the custom_fields list v2 gives the
-- same record added by the sidecar. The values are stored by id beside what v1 says (which
-- stays as before), a record without the list keeps them, the views follow the model (a rename
-- keeps the values), and a write through a view is pushed through v2 apart from the v1 write:
-- custom_fields_write (string ids; a note's contact and user_id), never in the v1 body.
begin;
create extension if not exists pgtap;
select plan(14);

insert into keapsync.accounts (id, name) values ('aaaaaaaa-0000-4000-8000-000000000000', 'A');
select keapsync.apply_keap_record('aaaaaaaa-0000-4000-8000-000000000000', 'contact',
  '{"id": 5, "given_name": "Ann", "last_updated": "2026-01-01T00:00:00Z"}');
select keapsync.apply_keap_record('aaaaaaaa-0000-4000-8000-000000000000', 'note',
  '{"id": 7, "contact_id": 5, "title": "Called", "body": "b", "user_id": 3, "last_updated": "2026-01-01T00:00:00Z",
    "custom_fields": [{"id": "31", "content": "High"}, {"id": "32", "content": null}]}');
select keapsync.apply_keap_record('aaaaaaaa-0000-4000-8000-000000000000', 'order',
  '{"id": 9, "contact": {"id": 5}, "title": "Seats", "total": 20, "modification_date": "2026-01-01T00:00:00Z",
    "order_items": [{"id": 1, "name": "Seat", "price": 10, "quantity": 2}],
    "custom_fields": [{"id": "41", "content": "PO-1"}]}');

select is((select custom_fields from keap.notes where keap_id = 7), '{"31": "High"}', 'a note''s v2 values are stored by id');
select is((select custom_fields from keap.orders where keap_id = 9), '{"41": "PO-1"}', 'an order''s v2 values are stored by id');
select is((select (title, contact_keap_id, total) from keap.orders where keap_id = 9), ('Seats'::text, 5::bigint, 20::numeric),
          'the rest of the order is stored as before');
select is((select count(*)::int from keap.order_items i join keap.orders o on o.id = i.order_id where o.keap_id = 9), 1,
          'and its items');

select keapsync.apply_keap_record('aaaaaaaa-0000-4000-8000-000000000000', 'note',
  '{"id": 7, "contact_id": 5, "title": "Called again", "body": "b", "user_id": 3, "last_updated": "2026-01-02T00:00:00Z"}');
select is((select (title, custom_fields) from keap.notes where keap_id = 7), ('Called again'::text, '{"31": "High"}'::jsonb),
          'a version without the list (v2 not read) keeps the values');

select keapsync.apply_custom_field_model('aaaaaaaa-0000-4000-8000-000000000000', 'note',
  '[{"id": "31", "label": "Priority", "field_type": "TEXT"}]');
select keapsync.apply_custom_field_model('aaaaaaaa-0000-4000-8000-000000000000', 'order',
  '[{"id": "41", "label": "PO number", "field_type": "TEXT"}, {"id": "42", "label": "Seats", "field_type": "WHOLE_NUMBER"}]');
select is((select priority from keap.notes_custom where keap_id = 7), 'High', 'select priority from keap.notes_custom');
select is((select (po_number, seats) from keap.orders_custom where keap_id = 9), ('PO-1'::text, null::numeric),
          'select po_number from keap.orders_custom, typed by the model');

select keapsync.apply_custom_field_model('aaaaaaaa-0000-4000-8000-000000000000', 'note',
  '[{"id": "31", "label": "Urgency", "field_type": "TEXT"}]');
select is((select urgency from keap.notes_custom where keap_id = 7), 'High', 'renamed in Keap: the new name has the value');
select hasnt_column('keap', 'notes_custom', 'priority', 'and the old name is gone');

-- Writes through the views: local edits, pushed through v2 apart from the v1 write.
select set_config('keapsync.origin', '', true);  -- the applies above marked the transaction as Keap's
update keap.notes_custom set urgency = 'Low' where keap_id = 7;
update keap.orders_custom set po_number = 'PO-2', seats = 3 where keap_id = 9;
select is((select keapsync.push_request(s.account_id, 'note', s.local_id) - 'pushed' from keapsync.sync_state s
            where s.object_type = 'note' and s.keap_id = 7),
          '{"op": "update", "keap_id": 7, "body": {}, "update_mask": [],
            "custom_fields_write": {"parent_id": 5, "body": {"custom_fields": [{"id": "31", "content": "Low"}], "user_id": "3"}}}',
          'a note''s custom fields go to v2 under its contact, with its user, ids as strings; nothing to v1');
select is((select keapsync.push_request(s.account_id, 'order', s.local_id) - 'pushed' from keapsync.sync_state s
            where s.object_type = 'order' and s.keap_id = 9),
          '{"op": "update", "keap_id": 9, "body": {}, "update_mask": [],
            "custom_fields_write": {"parent_id": null, "body": {"custom_fields": [{"id": "41", "content": "PO-2"}, {"id": "42", "content": 3}]}}}',
          'an order whose only change is custom fields is written, through v2');
update keap.orders set title = 'Seats for 3' where keap_id = 9;
select is((select keapsync.push_request(s.account_id, 'order', s.local_id) ->> 'op' from keapsync.sync_state s
            where s.object_type = 'order' and s.keap_id = 9),
          'unsupported', 'an order whose own fields changed is still refused (v1 has no order update)');

insert into keap.notes (account_id, title, user_id, contact_keap_id, custom_fields)
values ('aaaaaaaa-0000-4000-8000-000000000000', 'New', 3, 5, '{"31": "Mid"}');
select is((select (r -> 'body' ? 'custom_fields') or (r -> 'update_mask' ? 'custom_fields') or r ? 'custom_fields_write'
                  or exists (select 1 from jsonb_object_keys(r -> 'pushed') k where k like 'custom_fields.%')
             from keapsync.sync_state s cross join lateral keapsync.push_request(s.account_id, 'note', s.local_id) r
            where s.object_type = 'note' and s.keap_id is null),
          false, 'a note created here is created through v1 without its custom fields, which stay pending');
select is((select r ->> 'op' from keapsync.sync_state s cross join lateral keapsync.push_request(s.account_id, 'note', s.local_id) r
            where s.object_type = 'note' and s.keap_id is null), 'create', 'and it is created');

select * from finish();
rollback;
