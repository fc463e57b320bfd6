-- What the push path sends: Keap's JSON built from the pending fields, tags as apply/remove
-- lists, unsupported operations refused with a reason, and the queue coalescing edits.
begin;
create extension if not exists pgtap;
select plan(12);

insert into keapsync.accounts (id, name) values ('70000000-0000-4000-8000-000000000007', 'Push');
select keapsync.apply_keap_record('70000000-0000-4000-8000-000000000007', 'contact',
  '{"id": 9, "given_name": "Ada", "email_addresses": [{"email": "ada@example.com", "field": "EMAIL1"}],
    "addresses": [{"field": "BILLING", "line1": "1 Main", "locality": "London", "country_code": "GBR"}],
    "custom_fields": [{"id": 3, "content": "x"}], "tag_ids": [5, 6], "last_updated": "2026-01-01T00:00:00.000Z"}');
create temp table c as select id from keap.contacts where keap_id = 9;
create function pg_temp.req() returns jsonb language sql as $$
  select keapsync.push_request('70000000-0000-4000-8000-000000000007', 'contact', (select id from c));
$$;

select is(pg_temp.req() ->> 'op', 'none', 'nothing to push after an apply');
update keap.contacts set given_name = 'Augusta', locality = 'Ockham', custom_fields = '{"3": "y"}' where keap_id = 9;
delete from keap.contact_tags where tag_id = (select id from keap.tags where keap_id = 5);
insert into keap.tags (account_id, keap_id, name) values ('70000000-0000-4000-8000-000000000007', 8, 'New');
insert into keap.contact_tags (account_id, contact_id, tag_id)
select '70000000-0000-4000-8000-000000000007', (select id from c), id from keap.tags where keap_id = 8;

select is(pg_temp.req() ->> 'op', 'update', 'local edits make an update');
select is(pg_temp.req() -> 'body' -> 'given_name', '"Augusta"'::jsonb, 'a plain field goes as itself');
select is(pg_temp.req() -> 'body' -> 'addresses',
          '[{"field": "BILLING", "line1": "1 Main", "locality": "Ockham", "country_code": "GBR"}]'::jsonb,
          'one changed address part sends the whole billing address');
select is(pg_temp.req() -> 'body' -> 'custom_fields', '[{"id": 3, "content": "y"}]'::jsonb, 'custom fields by id');
select is((select jsonb_agg(m order by m) from jsonb_array_elements_text(pg_temp.req() -> 'update_mask') m),
          '["addresses", "custom_fields", "given_name"]'::jsonb, 'update_mask names exactly those');
select ok(not (pg_temp.req() -> 'body' ? 'email_addresses'), 'unchanged fields are not sent');
select is(pg_temp.req() -> 'tags_add', '[8]'::jsonb, 'a tag applied here is applied in Keap');
select is(pg_temp.req() -> 'tags_remove', '[5]'::jsonb, 'a tag removed here is removed in Keap');

select keapsync.apply_keap_record('70000000-0000-4000-8000-000000000007', 'order',
  '{"id": 40, "title": "O", "modification_date": "2026-01-01T00:00:00.000Z"}');
update keap.orders set title = 'Renamed' where keap_id = 40;
select is(keapsync.push_request('70000000-0000-4000-8000-000000000007', 'order', (select id from keap.orders where keap_id = 40)) ->> 'op',
          'unsupported', 'an order update is refused: Keap v1 has none');

select keapsync.enqueue_push('70000000-0000-4000-8000-000000000007', 'contact', (select id from c), '0/10');
select keapsync.enqueue_push('70000000-0000-4000-8000-000000000007', 'contact', (select id from c), '0/20');
select is((select count(*) from keapsync.push_queue)::int, 1, 'ten edits of one record are one queue row');
select is((select last_lsn from keapsync.push_queue), '0/20'::pg_lsn, 'remembering the newest position');

select * from finish();
rollback;
