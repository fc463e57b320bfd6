-- An order item's product becomes a real reference (issue #17), as a contact's company did
-- (20261204030000), with one difference: keap.order_items.product_id is also what an order
-- created here sends to Keap, and such an item may name a product that is not stored here (the
-- account does not sync products, or they have not arrived yet). Clearing product_id, or
-- refusing the item, would lose or block what the person wrote. So the Keap id stays in
-- product_id, and the reference is made by a second column:
--
--   product_account_id  the item's account while its product is stored here, else null. The
--                       foreign key (product_account_id, product_id) -> keap.products
--                       (account_id, keap_id) holds whenever it is set (a null part leaves a
--                       foreign key unchecked), and a check keeps it the item's own account.
--
-- Storing a product (or giving a local one its Keap id) links the items of its account that
-- name it; a product deleted unlinks them (on delete set null), its Keap id staying in
-- product_id; an item written or changed links itself if its product is here. Analysts join as
-- before, on (account_id, product_id); `product_account_id is not null` says the product is here.

alter table keap.order_items add column product_account_id uuid,
  add constraint order_items_product_account_check check (product_account_id = account_id);

-- An item is linked exactly when its product is here. One that finds no product waits for a
-- product link step running at the same moment, and looks again (as tg_contact_company does).
create function keapsync.tg_order_item_product() returns trigger
language plpgsql security definer set search_path = ''
as $$
begin
  new.product_account_id := null;
  if new.product_id is null then
    return new;
  end if;
  if not exists (select 1 from keap.products p where p.account_id = new.account_id and p.keap_id = new.product_id) then
    perform pg_advisory_xact_lock_shared(hashtextextended(new.account_id::text || '/product-link/' || new.product_id, 0));
    if not exists (select 1 from keap.products p where p.account_id = new.account_id and p.keap_id = new.product_id) then
      return new;
    end if;
  end if;
  new.product_account_id := new.account_id;
  return new;
end;
$$;
revoke execute on function keapsync.tg_order_item_product() from public;

create trigger product_link_insert before insert on keap.order_items
  for each row when (new.product_id is not null or new.product_account_id is not null)
  execute function keapsync.tg_order_item_product();
create trigger product_link_update before update on keap.order_items
  for each row when (new.product_id is distinct from old.product_id or new.product_account_id is distinct from old.product_account_id)
  execute function keapsync.tg_order_item_product();

-- Products that gained a Keap id in this statement link the items of their account naming them.
create function keapsync.tg_product_links() returns trigger
language plpgsql security definer set search_path = ''
as $$
begin
  -- The lock an item that found no product waits on (see tg_order_item_product), in one order.
  if tg_op = 'INSERT' then
    perform pg_advisory_xact_lock(hashtextextended(n.account_id::text || '/product-link/' || n.keap_id, 0))
       from (select distinct account_id, keap_id from new_rows where keap_id is not null order by 1, 2) n;
    update keap.order_items i set product_account_id = n.account_id
      from new_rows n
     where n.keap_id is not null and i.account_id = n.account_id and i.product_id = n.keap_id
       and i.product_account_id is null;
  else
    perform pg_advisory_xact_lock(hashtextextended(n.account_id::text || '/product-link/' || n.keap_id, 0))
       from (select distinct n.account_id, n.keap_id from new_rows n join old_rows o on o.id = n.id
              where n.keap_id is not null and n.keap_id is distinct from o.keap_id order by 1, 2) n;
    update keap.order_items i set product_account_id = n.account_id
      from new_rows n join old_rows o on o.id = n.id
     where n.keap_id is not null and n.keap_id is distinct from o.keap_id
       and i.account_id = n.account_id and i.product_id = n.keap_id and i.product_account_id is null;
  end if;
  return null;
end;
$$;
revoke execute on function keapsync.tg_product_links() from public;

create trigger link_order_items_insert after insert on keap.products referencing new table as new_rows
  for each statement execute function keapsync.tg_product_links();
create trigger link_order_items_update after update on keap.products referencing old table as old_rows new table as new_rows
  for each statement execute function keapsync.tg_product_links();

-- The items as they are, then the reference (its index serves a product's delete).
update keap.order_items i set product_account_id = i.account_id
 where exists (select 1 from keap.products p where p.account_id = i.account_id and p.keap_id = i.product_id);
create index order_items_product_ref_idx on keap.order_items (product_account_id, product_id)
  where product_account_id is not null;
alter table keap.order_items add constraint order_items_product_fkey
  foreign key (product_account_id, product_id) references keap.products (account_id, keap_id)
  on delete set null (product_account_id);
