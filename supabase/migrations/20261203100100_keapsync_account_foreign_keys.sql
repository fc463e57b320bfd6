-- References between synced rows stay inside one account (issue #12). The foreign keys named the
-- referenced row by id alone, so an admin of A could tag A's contact with B's tag (whose Keap id
-- would then be pushed into A's Keap tenant) or hang order items and payments on B's order, and
-- the foreign key error or its absence told which of B's ids exist. Now each reference carries
-- the account: (account_id, tag_id) must be a tag of the same account, and an id of another
-- account fails exactly like an id nobody has.

-- Links that already cross accounts can only come from that hole; they are removed, as Keap's
-- writes (origin 'keap'), so their removal is not pushed to either tenant.
select keapsync.set_origin('keap');
delete from keap.contact_tags ct using keap.contacts c where c.id = ct.contact_id and c.account_id <> ct.account_id;
delete from keap.contact_tags ct using keap.tags t where t.id = ct.tag_id and t.account_id <> ct.account_id;
delete from keap.order_items i using keap.orders o where o.id = i.order_id and o.account_id <> i.account_id;
delete from keap.order_payments p using keap.orders o where o.id = p.order_id and o.account_id <> p.account_id;
select set_config('keapsync.origin', '', true);

-- The referenced side: (account_id, id) is unique because id is.
alter table keap.contacts add constraint contacts_account_id_id_key unique (account_id, id);
alter table keap.tags add constraint tags_account_id_id_key unique (account_id, id);
alter table keap.orders add constraint orders_account_id_id_key unique (account_id, id);

alter table keap.contact_tags
  drop constraint contact_tags_contact_id_fkey,
  drop constraint contact_tags_tag_id_fkey,
  add constraint contact_tags_contact_fkey foreign key (account_id, contact_id)
    references keap.contacts (account_id, id) on delete cascade,
  add constraint contact_tags_tag_fkey foreign key (account_id, tag_id)
    references keap.tags (account_id, id) on delete cascade;

alter table keap.order_items
  drop constraint order_items_order_id_fkey,
  add constraint order_items_order_fkey foreign key (account_id, order_id)
    references keap.orders (account_id, id) on delete cascade;

alter table keap.order_payments
  drop constraint order_payments_order_id_fkey,
  add constraint order_payments_order_fkey foreign key (account_id, order_id)
    references keap.orders (account_id, id) on delete cascade;
