-- Custom fields by name for notes and orders (issue #17, requirement 3), the two synced types
-- keapsync reads through Keap's v1, whose Note and Order carry no custom fields. Their v2
-- records do (Note.custom_fields, OrderV2.custom_fields), so the records stay v1 (what keap.notes
-- and keap.orders store does not change) and the sidecar adds to each record it reads the
-- custom_fields list v2 gives it (GET /v2/notes?filter=ids==…&fields=custom_fields,
-- GET /v2/orders?filter=ids==…), before the apply: the values land in the table's custom_fields
-- by id as for the other types, and keapsync.keap_unknown keeps them when a record comes without
-- the list. The models are GET /v2/notes/model (Keap's notes share the tasks' fields: "Custom
-- Fields for Tasks, Classic Appointments and Notes are combined") and GET /v2/orders/model.
--
-- Writes: v2 updates a note's custom fields with PATCH /v2/contacts/{contact}/notes/{id} (which
-- requires user_id) and an order's with PATCH /v2/orders/{id}, both with
-- update_mask=custom_fields. push_request hands those apart from the v1 write as
-- custom_fields_write (the v2 body, ids as strings, and the note's contact for the path). v1 has
-- no order update, so an order whose other fields changed here is still refused with the reason;
-- one whose only change is custom fields is written. A note or order created here is created
-- through v1 without its custom fields (they stay unpushed until the record next changes here).

alter table keap.notes add column custom_fields jsonb not null default '{}';
alter table keap.orders add column custom_fields jsonb not null default '{}';
comment on column keap.notes.custom_fields is 'Keap''s custom-field values by field id (from v2); by label in keap.notes_custom';
comment on column keap.orders.custom_fields is 'Keap''s custom-field values by field id (from v2); by label in keap.orders_custom';

update keapsync.object_types set map_column = 'custom_fields' where object_type in ('note', 'order');

-- keap_columns_of as 20261204020000 left it, with an order's custom values (notes, a registry
-- type, get theirs from map_column already).
create or replace function keapsync.keap_columns_of(p_type text, p_raw jsonb) returns jsonb
language plpgsql stable
as $$
declare
  emails jsonb;
  phones jsonb;
  addrs jsonb;
  addr jsonb;
  email text;
  phone text;
  cf jsonb := '{}';
begin
  if p_type = 'contact' then
    -- A contact's lists hold one entry, most often: that one is taken as it is, and only a longer
    -- list is sorted (the email and phone of the first field, the billing address else the first).
    emails := case when pg_catalog.jsonb_typeof(p_raw -> 'email_addresses') = 'array' then p_raw -> 'email_addresses' else '[]' end;
    if pg_catalog.jsonb_array_length(emails) > 1 then
      email := (select e ->> 'email' from pg_catalog.jsonb_array_elements(emails) e order by e ->> 'field' limit 1);
    else
      email := emails -> 0 ->> 'email';
    end if;
    phones := case when pg_catalog.jsonb_typeof(p_raw -> 'phone_numbers') = 'array' then p_raw -> 'phone_numbers' else '[]' end;
    if pg_catalog.jsonb_array_length(phones) > 1 then
      phone := (select ph ->> 'number' from pg_catalog.jsonb_array_elements(phones) ph order by ph ->> 'field' limit 1);
    else
      phone := phones -> 0 ->> 'number';
    end if;
    addrs := case when pg_catalog.jsonb_typeof(p_raw -> 'addresses') = 'array' then p_raw -> 'addresses' else '[]' end;
    if pg_catalog.jsonb_array_length(addrs) > 1 then
      addr := (select a from pg_catalog.jsonb_array_elements(addrs) a
                order by (a ->> 'field' = 'BILLING') desc, a ->> 'field' limit 1);
    else
      addr := addrs -> 0;
    end if;
    cf := keapsync.keap_custom_columns('custom_fields', p_raw);
    return pg_catalog.jsonb_build_object(
        'given_name', p_raw ->> 'given_name',
        'middle_name', p_raw ->> 'middle_name',
        'family_name', p_raw ->> 'family_name',
        'email', email,
        'phone', phone,
        'company_name', coalesce(p_raw -> 'company' ->> 'company_name', p_raw ->> 'company_name'),
        'company_keap_id', case when pg_catalog.jsonb_typeof(p_raw -> 'company') = 'object'
                                then p_raw -> 'company' ->> 'id' end,
        'job_title', p_raw ->> 'job_title',
        'owner_id', p_raw ->> 'owner_id',
        'lead_source_id', p_raw ->> 'lead_source_id',
        'email_status', p_raw ->> 'email_status',
        'email_opted_in', p_raw ->> 'email_opted_in',
        'date_created', p_raw ->> 'date_created',
        'last_updated', p_raw ->> 'last_updated')
      -- The billing address (else the first one) fills the address columns; none, all null.
      || pg_catalog.jsonb_build_object(
           'address_line1', addr ->> 'line1', 'address_line2', addr ->> 'line2', 'locality', addr ->> 'locality',
           'region', addr ->> 'region', 'postal_code', coalesce(addr ->> 'postal_code', addr ->> 'zip_code'),
           'country_code', addr ->> 'country_code')
      || cf;
  end if;
  if p_type in ('tag_category', 'tag', 'order', 'subscription') then
    return case p_type
  when 'tag_category' then
    pg_catalog.jsonb_build_object('name', p_raw ->> 'name', 'description', p_raw ->> 'description')
  when 'tag' then
    pg_catalog.jsonb_build_object('name', p_raw ->> 'name', 'description', p_raw ->> 'description',
      'category_keap_id', coalesce(p_raw -> 'category' ->> 'id', p_raw ->> 'category_id'))
  when 'order' then
    pg_catalog.jsonb_build_object(
      'contact_keap_id', coalesce(p_raw -> 'contact' ->> 'id', p_raw ->> 'contact_id'),
      'title', p_raw ->> 'title', 'status', p_raw ->> 'status', 'order_type', p_raw ->> 'order_type',
      'source_type', p_raw ->> 'source_type', 'order_date', p_raw ->> 'order_date',
      'total', p_raw ->> 'total', 'total_paid', p_raw ->> 'total_paid', 'total_due', p_raw ->> 'total_due',
      'refund_total', p_raw ->> 'refund_total', 'notes', p_raw ->> 'notes',
      'creation_date', p_raw ->> 'creation_date', 'modification_date', p_raw ->> 'modification_date')
      || keapsync.keap_custom_columns('custom_fields', p_raw)
  when 'subscription' then
    pg_catalog.jsonb_build_object(
      'contact_keap_id', p_raw ->> 'contact_id', 'product_id', p_raw ->> 'product_id',
      'subscription_plan_id', p_raw ->> 'subscription_plan_id', 'active', p_raw ->> 'active',
      'billing_amount', p_raw ->> 'billing_amount', 'billing_cycle', p_raw ->> 'billing_cycle',
      'billing_frequency', p_raw ->> 'billing_frequency', 'quantity', p_raw ->> 'quantity',
      'start_date', p_raw ->> 'start_date', 'end_date', p_raw ->> 'end_date',
      'next_bill_date', p_raw ->> 'next_bill_date', 'auto_charge', p_raw ->> 'auto_charge',
      'modification_time', p_raw ->> 'modification_time')
      || keapsync.keap_custom_columns('custom_fields', p_raw)
    end;
  end if;
  -- A type of the registry: its columns at their keap_paths and, where it keeps custom fields,
  -- their values by id.
  return
    (select coalesce((select pg_catalog.jsonb_object_agg(e.key, p_raw #>> array(select pg_catalog.jsonb_array_elements_text(e.value)))
                        from pg_catalog.jsonb_each(t.keap_paths) e), '{}')
            || keapsync.keap_custom_columns(t.map_column, p_raw)
       from keapsync.object_types t
      where t.object_type = p_type);
end;
$$;

-- push_request as 20261203233000 left it, with the custom fields of the types read through v1
-- taken out of their v1 write: on an update they become custom_fields_write (sent through v2
-- first); on a create they are neither sent nor counted as pushed, so they stay pending. An order
-- update that changes only custom fields is no longer refused.
create or replace function keapsync.push_request(p_account uuid, p_type text, p_local_id bigint) returns jsonb
language plpgsql stable security definer set search_path = '' set timezone = 'UTC'
as $$
declare
  p jsonb := keapsync.pending_push(p_account, p_type, p_local_id);
  op text := p ->> 'op';
  fields jsonb := p -> 'fields';
  ops text[] := (select t.push_ops from keapsync.object_types t where t.object_type = p_type);
  -- The types whose v1 records carry no custom fields, written through v2 (objecttype's CustomFields).
  v1_custom constant boolean := p_type in ('note', 'order');
  keys text[];
  doc jsonb;
  req jsonb;
  pushed jsonb;
  sent jsonb;
begin
  keys := array(select jsonb_object_keys(fields)) || array(select jsonb_array_elements_text(p -> 'cleared'));
  pushed := fields || coalesce((select jsonb_object_agg(c, null) from jsonb_array_elements_text(p -> 'cleared') c), '{}');
  if v1_custom and op = 'create' then
    pushed := (select coalesce(jsonb_object_agg(e.key, e.value), '{}') from jsonb_each(pushed) e
                where not starts_with(e.key, 'custom_fields.'));
  end if;
  req := jsonb_build_object('op', op, 'keap_id', p -> 'keap_id', 'pushed', pushed);
  if op in ('none', 'delete') then
    if op = 'delete' and p_type not in ('contact', 'order') and not ('delete' = any (ops)) then
      return req || jsonb_build_object('op', 'unsupported', 'reason', format('Keap''s API cannot delete a %s', p_type));
    end if;
    return req;
  end if;
  doc := keapsync.row_doc(p_type, p_local_id);
  if p_type = 'contact' then
    return req || keapsync.contact_body(doc, keys)
      || jsonb_build_object(
           'email', doc -> 'email',
           'tags_add', coalesce((select jsonb_agg(substr(k, 5)::bigint) from unnest(keys) k
                                  where k like 'tag.%' and fields ? k), '[]'),
           'tags_remove', coalesce((select jsonb_agg(substr(k, 5)::bigint) from unnest(keys) k
                                     where k like 'tag.%' and not fields ? k), '[]'));
  elsif p_type = 'tag' and op = 'create' then
    return req || jsonb_build_object('body', jsonb_strip_nulls(jsonb_build_object(
      'name', doc -> 'name', 'description', doc -> 'description',
      'category', case when doc ? 'category_keap_id' then jsonb_build_object('id', doc -> 'category_keap_id') end)));
  elsif p_type = 'order' and op = 'create' then
    return req || jsonb_build_object('body', jsonb_strip_nulls(jsonb_build_object(
      'contact_id', doc -> 'contact_keap_id', 'order_date', doc -> 'order_date', 'order_title', doc -> 'title',
      'order_type', coalesce(doc ->> 'order_type', 'Offline'),
      'order_items', (select coalesce(jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
                         'product_id', i.product_id, 'quantity', i.quantity, 'price', i.price, 'description', i.description))), '[]')
                        from keap.order_items i where i.order_id = p_local_id))));
  elsif p_type = 'product' and op = 'create' then
    -- row_doc leaves nulls out, so a product without a price has no price_cents key.
    if coalesce((doc ->> 'price_cents')::bigint < 0, true) then
      return req || jsonb_build_object('op', 'unsupported', 'reason',
        'Keap needs a price of 0 or more to create a product: set keap.products.price_cents (in the smallest unit of the Keap account''s currency)');
    end if;
    sent := keapsync.keap_body(p_type, doc, array(select jsonb_object_keys(doc)));
    return req || sent || jsonb_build_object('body', (sent -> 'body') || jsonb_build_object(
      'price', doc -> 'price_cents', 'short_description', coalesce(doc -> 'short_description', '""')));
  elsif op = any (ops)
        or (p_type = 'order' and op = 'update' and not exists (select 1 from unnest(keys) k where not starts_with(k, 'custom_fields.'))) then
    req := req || keapsync.keap_body(p_type, doc, case when op = 'create' then array(select jsonb_object_keys(doc)) else keys end);
    if v1_custom and req -> 'update_mask' ? 'custom_fields' then
      req := req || jsonb_build_object(
        'body', (req -> 'body') - 'custom_fields',
        'update_mask', (req -> 'update_mask') - 'custom_fields')
        || case when op = 'update' then jsonb_build_object('custom_fields_write', jsonb_build_object(
             'parent_id', case when p_type = 'note' then doc -> 'contact_keap_id' end,
             -- v2 takes ids as strings, and requires a note's user_id in every update.
             'body', jsonb_strip_nulls(jsonb_build_object(
               'custom_fields', coalesce((select jsonb_agg(jsonb_build_object('id', x ->> 'id', 'content', x -> 'content'))
                                            from jsonb_array_elements(req -> 'body' -> 'custom_fields') x), '[]'),
               'user_id', case when p_type = 'note' then doc ->> 'user_id' end))))
           else '{}' end;
    end if;
    return req;
  end if;
  return req || jsonb_build_object('op', 'unsupported', 'reason',
    case p_type
      when 'order' then 'Keap''s REST v1 has no order update (only an order''s custom fields are written, through v2); change orders in Keap'
      when 'subscription' then 'Keap''s REST v1 cannot change or create subscriptions this way; change them in Keap'
      when 'tag' then 'Keap''s REST v1 has no tag update; rename tags in Keap'
      else format('keapsync does not %s a %s in Keap; do it in Keap', op, p_type) end);
end;
$$;
revoke execute on function keapsync.push_request(uuid, text, bigint) from public;

-- The new views (refresh_custom_views walks every type with a map_column) and the sidecar's
-- rights on them.
select keapsync.refresh_custom_views();
select keapsync.grant_sidecar_rls();
