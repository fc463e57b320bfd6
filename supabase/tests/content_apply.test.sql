-- Apply by content, not by clock alone (issue #13): a version whose stamp equals the stored one
-- but whose content differs is merged; tags and custom fields compare as sets; only a strictly
-- older version is stale. And an order's items and payments land in their tables.
begin;
create extension if not exists pgtap;
select plan(22);

insert into keapsync.accounts (id, name) values ('13000000-0000-4000-8000-000000000001', 'A');
insert into keapsync.settings (account_id, default_policy) values ('13000000-0000-4000-8000-000000000001', 'newest_wins');

create function pg_temp.contact(p_tags jsonb, p_fields jsonb, p_extra jsonb default '{}') returns jsonb
language sql as $$
  select jsonb_build_object(
    'id', 1, 'given_name', 'Ada', 'family_name', 'Lovelace',
    'email_addresses', jsonb_build_array(jsonb_build_object('email', 'ada@example.com', 'field', 'EMAIL1')),
    'custom_fields', p_fields, 'tag_ids', p_tags,
    'date_created', '2026-01-01T00:00:00.000Z', 'last_updated', '2026-03-01T10:00:00.000Z') || p_extra;
$$;
create function pg_temp.apply(p_type text, p_raw jsonb) returns text language sql as $$
  select keapsync.apply_keap_record('13000000-0000-4000-8000-000000000001', p_type, p_raw);
$$;
create function pg_temp.tags() returns bigint[] language sql as $$
  select array_agg(t.keap_id order by t.keap_id) from keap.contact_tags ct join keap.tags t on t.id = ct.tag_id
   join keap.contacts c on c.id = ct.contact_id where c.keap_id = 1;
$$;

-- ---- contacts: same stamp, other content ---------------------------------------------------------
select is(pg_temp.apply('contact', pg_temp.contact('[101, 102]', '[{"id": 7, "content": "Gold"}, {"id": 8, "content": "x"}]')),
          'inserted', 'first version inserted');
select is(pg_temp.apply('contact', pg_temp.contact('[102, 101]', '[{"id": 8, "content": "x"}, {"id": 7, "content": "Gold"}]')),
          'duplicate', 'same stamp, same tags and custom fields in another order: a duplicate (sets)');
select is(pg_temp.apply('contact', pg_temp.contact('[101, 102, 103]', '[{"id": 7, "content": "Gold"}, {"id": 8, "content": "x"}]')),
          'updated', 'same stamp, a tag applied without a last_updated bump: merged');
select is(pg_temp.tags(), array[101, 102, 103]::bigint[], 'the new tag reached contact_tags');
select is(pg_temp.apply('contact', pg_temp.contact('[101, 103]', '[{"id": 7, "content": "Gold"}, {"id": 8, "content": "x"}]')),
          'updated', 'same stamp, a tag removed: merged');
select is(pg_temp.tags(), array[101, 103]::bigint[], 'the removed tag left contact_tags');
select is(pg_temp.apply('contact', pg_temp.contact('[101, 103]', '[{"id": 7, "content": "Platinum"}, {"id": 8, "content": "x"}]')),
          'updated', 'same stamp, a custom field changed: merged');
select is((select custom_fields ->> '7' from keap.contacts where keap_id = 1), 'Platinum', 'the custom field landed');
select is(pg_temp.apply('contact', pg_temp.contact('[101, 103]', '[{"id": 7, "content": "Platinum"}, {"id": 8, "content": "x"}]',
                                                   '{"given_name": "Augusta"}')),
          'updated', 'same stamp (two edits within one second at second precision): merged');
select is((select given_name from keap.contacts where keap_id = 1), 'Augusta', 'the second edit landed');
select is(pg_temp.apply('contact', pg_temp.contact('[101]', '[]', '{"last_updated": "2026-03-01T09:59:59.000Z", "given_name": "Old"}')),
          'stale', 'a strictly older version is stale, whatever its content');
select is((select given_name from keap.contacts where keap_id = 1), 'Augusta', 'the stale version did not land');

-- ---- orders: items and payments ---------------------------------------------------------------------
create function pg_temp.ord(p_paid numeric, p_payments jsonb) returns jsonb language sql as $$
  select jsonb_build_object('id', 500, 'title', 'Widgets', 'status', case when p_paid >= 30 then 'PAID' else 'DRAFT' end,
    'total', 30, 'total_paid', p_paid, 'total_due', 30 - p_paid, 'contact_id', '1',
    'order_date', '2026-03-01T00:00:00.000Z', 'creation_date', '2026-03-01T00:00:00.000Z',
    'modification_date', '2026-03-01T00:00:00.000Z',
    'order_items', '[{"id": 9001, "name": "Widget", "price": 10, "quantity": 2, "type": "PRODUCT", "product": {"id": 4, "name": "Widget"}},
                     {"id": 9002, "name": "Gadget", "price": 10, "quantity": 1, "type": "PRODUCT", "product": {"id": 5, "name": "Gadget"}}]'::jsonb)
    || case when p_payments is null then '{}' else jsonb_build_object('payments', p_payments) end;
$$;
select is((keapsync.apply_keap_batch('13000000-0000-4000-8000-000000000001', 'order', jsonb_build_array(pg_temp.ord(0, '[]'))) ->> 'inserted')::int,
          1, 'a backfill page inserts the order');
select is((select count(*)::int from keap.order_items i join keap.orders o on o.id = i.order_id where o.keap_id = 500), 2,
          'its items land in order_items');
select is((select sum(price * quantity) from keap.order_items i join keap.orders o on o.id = i.order_id where o.keap_id = 500), 30::numeric,
          'with their prices and quantities');
select is(pg_temp.apply('order', pg_temp.ord(10, '[{"id": 77, "amount": 10, "invoice_id": 500, "pay_date": "2026-03-02T00:00:00.000Z", "pay_status": "Paid"}]')),
          'updated', 'a payment that did not bump modification_date: merged');
select is((select total_paid from keap.orders where keap_id = 500), 10::numeric, 'total_paid follows Keap');
select is((select count(*)::int from keap.order_payments p join keap.orders o on o.id = p.order_id where o.keap_id = 500), 1,
          'the payment row landed');
select is(pg_temp.apply('order', pg_temp.ord(10, null)), 'duplicate',
          'an object without payments (not fetched) and the same content is a duplicate');
select is((select count(*)::int from keap.order_payments p join keap.orders o on o.id = p.order_id where o.keap_id = 500), 1,
          'payments not fetched are kept');
select is(keapsync.apply_keap_delete('13000000-0000-4000-8000-000000000001', 'order', 500), 'deleted', 'Keap deleted the order');
select is((select count(*)::int from keap.order_items) + (select count(*)::int from keap.order_payments), 0,
          'its items and payments went with it');

select * from finish();
rollback;
