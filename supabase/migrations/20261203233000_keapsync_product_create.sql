-- Creating products in Keap. Keap's v2 reads a product's price as {amount, currency_code} but
-- takes it on create as a bare integer in the smallest unit of the account's currency
-- (CreateProductRequest.price), and requires name, price and short_description. A product
-- inserted here is now created with price = price_cents and short_description ('' when none is
-- set); one without a price (or with a negative one) is parked with the reason, and setting
-- price_cents re-sends the create. The currency is the Keap account's: currency_code is Keap's
-- and Keap's answer fills it. After the create the price stays Keap's (an update never sends it).

update keapsync.object_types set push_ops = array['create', 'update', 'delete'] where object_type = 'product';

-- push_request: as before, with the product create body built from keap_paths plus the price.
create or replace function keapsync.push_request(p_account uuid, p_type text, p_local_id bigint) returns jsonb
language plpgsql stable security definer set search_path = '' set timezone = 'UTC'
as $$
declare
  p jsonb := keapsync.pending_push(p_account, p_type, p_local_id);
  op text := p ->> 'op';
  fields jsonb := p -> 'fields';
  ops text[] := (select t.push_ops from keapsync.object_types t where t.object_type = p_type);
  keys text[];
  doc jsonb;
  req jsonb;
  pushed jsonb;
  sent jsonb;
begin
  keys := array(select jsonb_object_keys(fields)) || array(select jsonb_array_elements_text(p -> 'cleared'));
  pushed := fields || coalesce((select jsonb_object_agg(c, null) from jsonb_array_elements_text(p -> 'cleared') c), '{}');
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
  elsif op = any (ops) then
    return req || keapsync.keap_body(p_type, doc, case when op = 'create' then array(select jsonb_object_keys(doc)) else keys end);
  end if;
  return req || jsonb_build_object('op', 'unsupported', 'reason',
    case p_type
      when 'order' then 'Keap''s REST v1 has no order update; change orders in Keap'
      when 'subscription' then 'Keap''s REST v1 cannot change or create subscriptions this way; change them in Keap'
      when 'tag' then 'Keap''s REST v1 has no tag update; rename tags in Keap'
      else format('keapsync does not %s a %s in Keap; do it in Keap', op, p_type) end);
end;
$$;
revoke execute on function keapsync.push_request(uuid, text, bigint) from public;

select keapsync.grant_sidecar_rls();
