-- An order item's product is a real reference: product_account_id with product_id is a foreign
-- key to keap.products, set exactly while the product is here. Items first then the product,
-- the product first, the product deleted, another account's product with the same Keap id, and
-- an item written here that names a product not here (kept: an order created here sends it).
begin;
create extension if not exists pgtap;
select plan(10);

insert into keapsync.accounts (id, name) values
  ('d1000000-0000-4000-8000-000000000001', 'A'), ('d1000000-0000-4000-8000-000000000002', 'B');

select ok(exists (select 1 from pg_constraint where conname = 'order_items_product_fkey' and contype = 'f'
                     and conrelid = 'keap.order_items'::regclass and confrelid = 'keap.products'::regclass),
          'order items reference products by a foreign key');

-- Items first: stored at once, unlinked, the product's Keap id kept.
select is(keapsync.apply_keap_record('d1000000-0000-4000-8000-000000000001', 'order',
  '{"id": 1, "title": "O", "modification_date": "2026-01-01T00:00:00Z",
    "order_items": [{"id": 11, "product": {"id": 7}, "quantity": 1, "price": 5}, {"id": 12, "product": {"id": 8}, "quantity": 1, "price": 5}]}'),
  'inserted', 'an order whose products are not here yet arrives');
select is((select array_agg(row(product_id, product_account_id)::text order by keap_id) from keap.order_items),
          array[row(7, null::uuid)::text, row(8, null::uuid)::text], 'its items keep the products'' Keap ids, unlinked');

-- Another account's product with the same Keap id never links them.
select is(keapsync.apply_keap_record('d1000000-0000-4000-8000-000000000002', 'product',
  '{"id": 7, "name": "Other", "update_time": "2026-01-01T00:00:00Z"}'), 'inserted', 'account B stores its product 7');
select is((select count(*)::int from keap.order_items where product_account_id is not null), 0,
          'another account''s product 7 does not link them');

-- Then the product: the item naming it is linked.
select is(keapsync.apply_keap_record('d1000000-0000-4000-8000-000000000001', 'product',
  '{"id": 7, "name": "Widget", "update_time": "2026-01-01T00:00:00Z"}'), 'inserted', 'product 7 arrives');
select is((select array_agg(row(product_id, product_account_id)::text order by keap_id) from keap.order_items),
          array[row(7, 'd1000000-0000-4000-8000-000000000001'::uuid)::text, row(8, null::uuid)::text],
          'the item naming it is linked, the other waits');

-- Product first: an item naming it is linked as it is written, also one written here.
select set_config('keapsync.origin', '', true);
insert into keap.order_items (account_id, order_id, product_id, quantity)
select account_id, id, 7, 1 from keap.orders where keap_id = 1;
insert into keap.order_items (account_id, order_id, product_id, quantity)
select account_id, id, 99, 1 from keap.orders where keap_id = 1;
select is((select array_agg(row(product_id, product_account_id)::text order by product_id) from keap.order_items where keap_id is null),
          array[row(7, 'd1000000-0000-4000-8000-000000000001'::uuid)::text, row(99, null::uuid)::text],
          'an item written here is linked when its product is here, and keeps a product that is not');

-- The product deleted in Keap: its items are unlinked and keep its Keap id.
select keapsync.apply_keap_delete('d1000000-0000-4000-8000-000000000001', 'product', 7);
select is((select count(*)::int from keap.order_items where product_id = 7 and product_account_id is null), 2,
          'a deleted product unlinks its items, which keep its Keap id');

-- The link is the database's to set: one set by hand to another account is put right.
update keap.order_items set product_account_id = 'd1000000-0000-4000-8000-000000000002' where product_id = 8;
select is((select product_account_id from keap.order_items where product_id = 8), null,
          'an item is never linked to another account''s product');

select * from finish();
rollback;
