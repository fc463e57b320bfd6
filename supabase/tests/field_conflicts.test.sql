-- Field conflicts of products, notes and tasks (companies' and opportunities' are in their own
-- files): the same field changed here and in Keap to different values is a conflict for that
-- field only (manual policy); a field changed on one side alone merges, and the same change on
-- both sides is no conflict.
begin;
create extension if not exists pgtap;
select plan(9);

insert into keapsync.accounts (id, name) values ('f0000000-0000-4000-8000-000000000001', 'F');
insert into keapsync.settings (account_id, default_policy) values ('f0000000-0000-4000-8000-000000000001', 'manual');

create function pg_temp.apply(p_type text, p_raw jsonb) returns text language sql as $$
  select keapsync.apply_keap_record('f0000000-0000-4000-8000-000000000001', p_type, p_raw);
$$;
create function pg_temp.conflicts(p_type text) returns text language sql as $$
  select string_agg(field || ':' || (base_value #>> '{}') || '>' || (local_value #>> '{}') || '/' || (keap_value #>> '{}'), ',' order by field)
    from keapsync.conflicts where object_type = p_type and status = 'open';
$$;

-- A product: here the name and the sku change, in Keap the name (otherwise) and the description.
select pg_temp.apply('product', '{"id": "21", "name": "Widget", "sku": "W-1", "description": "d", "short_description": "s",
  "active": true, "price": {"amount": 10, "currency_code": "USD"}, "update_time": "2026-01-01T00:00:00.000Z"}');
select set_config('keapsync.origin', '', true);
update keap.products set name = 'Widget Local', sku = 'W-LOCAL' where keap_id = 21;
select is(pg_temp.apply('product', '{"id": "21", "name": "Widget Keap", "sku": "W-1", "description": "d2", "short_description": "s",
  "active": true, "price": {"amount": 10, "currency_code": "USD"}, "update_time": "2026-01-02T00:00:00.000Z"}'),
  'updated', 'Keap changes the product''s name too');
select is(pg_temp.conflicts('product'), 'name:Widget>Widget Local/Widget Keap', 'both changed the product''s name: a conflict for that field only');
select is((select row(sku, description)::text from keap.products where keap_id = 21), row('W-LOCAL', 'd2')::text,
          'the sku changed here and the description changed in Keap merge');

-- A note on contact 5: here the body and the type change, in Keap the body (otherwise) and the title.
select pg_temp.apply('contact', '{"id": 5, "given_name": "Ann", "last_updated": "2026-01-01T00:00:00Z"}');
select pg_temp.apply('note', '{"id": 31, "contact_id": 5, "title": "Called", "body": "Left a message", "type": "Call",
  "user_id": 3, "last_updated": "2026-01-01T00:00:00Z"}');
select set_config('keapsync.origin', '', true);
update keap.notes set body = 'Local body', type = 'Email' where keap_id = 31;
select is(pg_temp.apply('note', '{"id": 31, "contact_id": 5, "title": "Called twice", "body": "Keap body", "type": "Call",
  "user_id": 3, "last_updated": "2026-01-02T00:00:00Z"}'), 'updated', 'Keap changes the note''s body too');
select is(pg_temp.conflicts('note'), 'body:Left a message>Local body/Keap body', 'both changed the note''s body: a conflict for that field only');
select is((select row(type, title)::text from keap.notes where keap_id = 31), row('Email', 'Called twice')::text,
          'the type changed here and the title changed in Keap merge');

-- A task: here the title, the description and completed change, in Keap the title (otherwise),
-- completed (alike) and the priority.
select pg_temp.apply('task', '{"id": "41", "title": "Call back", "description": "d", "priority": "LOW", "completed": false,
  "modification_time": "2026-01-01T00:00:00.000Z"}');
select set_config('keapsync.origin', '', true);
update keap.tasks set title = 'Local title', description = 'Local description', completed = true where keap_id = 41;
select is(pg_temp.apply('task', '{"id": "41", "title": "Keap title", "description": "d", "priority": "HIGH", "completed": true,
  "modification_time": "2026-01-02T00:00:00.000Z"}'), 'updated', 'Keap changes the task''s title too');
select is(pg_temp.conflicts('task'), 'title:Call back>Local title/Keap title',
          'both changed the task''s title: a conflict for that field only, none for completing it on both sides');
select is((select row(description, priority, completed)::text from keap.tasks where keap_id = 41),
          row('Local description', 'HIGH', true)::text, 'the description changed here and the priority changed in Keap merge');

select * from finish();
rollback;
