-- Push (Postgres -> Keap): the durable queue the replication consumer writes to before it
-- confirms an LSN, and the request a worker sends for a record, built here from the pending
-- fields so the mapping from columns to Keap's JSON lives beside the mapping the other way.

-- One row per record with unpushed local changes; re-enqueueing coalesces (ten quick edits of
-- one contact are one row, and the push reads the record's state at send time).
create table keapsync.push_queue (
  account_id uuid not null references keapsync.accounts (id) on delete cascade,
  object_type text not null references keapsync.object_types (object_type),
  local_id bigint not null,
  first_enqueued_at timestamptz not null default now(),  -- age of the oldest change waiting
  last_lsn pg_lsn,
  attempts integer not null default 0,
  next_attempt_at timestamptz not null default now(),
  last_error text,
  primary key (account_id, object_type, local_id)
);
create index push_queue_due_idx on keapsync.push_queue (next_attempt_at);
alter table keapsync.push_queue enable row level security;
grant select on keapsync.push_queue to authenticated;
grant all on keapsync.push_queue to service_role;
create policy members_read on keapsync.push_queue for select to authenticated
  using (account_id = any ((select keapsync.my_accounts())::uuid[]));

-- Record that a record changed at p_lsn. Idempotent; the earliest enqueue time is kept.
create or replace function keapsync.enqueue_push(p_account uuid, p_type text, p_local_id bigint, p_lsn pg_lsn)
returns void
language sql volatile security definer set search_path = ''
as $$
  insert into keapsync.push_queue (account_id, object_type, local_id, last_lsn)
  values (p_account, p_type, p_local_id, p_lsn)
  on conflict (account_id, object_type, local_id) do update
     set last_lsn = greatest(keapsync.push_queue.last_lsn, excluded.last_lsn),
         next_attempt_at = least(keapsync.push_queue.next_attempt_at, now());
$$;

-- Contact fields as Keap's v1 CreateOrPatchContact JSON, with the update_mask naming them.
-- p_doc is the full local doc (an address is sent whole), p_keys the fields to send.
create or replace function keapsync.contact_body(p_doc jsonb, p_keys text[]) returns jsonb
language plpgsql immutable set search_path = ''
as $$
declare
  body jsonb := '{}';
  mask text[] := '{}';
  k text;
  cf jsonb := '[]';
begin
  foreach k in array p_keys loop
    if k in ('given_name', 'middle_name', 'family_name', 'job_title', 'owner_id', 'lead_source_id') then
      body := body || jsonb_build_object(k, p_doc -> k);
      mask := mask || k;
    elsif k = 'email' then
      body := body || jsonb_build_object('email_addresses',
        jsonb_build_array(jsonb_build_object('field', 'EMAIL1', 'email', coalesce(p_doc ->> 'email', ''))));
      mask := mask || 'email_addresses'::text;
    elsif k = 'phone' then
      body := body || jsonb_build_object('phone_numbers',
        jsonb_build_array(jsonb_build_object('field', 'PHONE1', 'number', coalesce(p_doc ->> 'phone', ''))));
      mask := mask || 'phone_numbers'::text;
    elsif k in ('address_line1', 'address_line2', 'locality', 'region', 'postal_code', 'country_code') then
      if not ('addresses' = any (mask)) then
        body := body || jsonb_build_object('addresses', jsonb_build_array(jsonb_strip_nulls(jsonb_build_object(
          'field', 'BILLING', 'line1', p_doc -> 'address_line1', 'line2', p_doc -> 'address_line2',
          'locality', p_doc -> 'locality', 'region', p_doc -> 'region',
          'postal_code', p_doc -> 'postal_code', 'country_code', p_doc -> 'country_code'))));
        mask := mask || 'addresses'::text;
      end if;
    elsif k like 'custom_fields.%' then
      cf := cf || jsonb_build_array(jsonb_build_object('id', substr(k, 15)::bigint, 'content', p_doc -> k));
    end if;
  end loop;
  if cf <> '[]' then
    body := body || jsonb_build_object('custom_fields', cf);
    mask := mask || 'custom_fields'::text;
  end if;
  -- Top-level nulls stay: a field cleared here is sent as null so Keap clears it too.
  return jsonb_build_object('body', body, 'update_mask', to_jsonb(mask));
end;
$$;

-- What to send to Keap for a record, decided here:
--   {"op": "create"|"update"|"delete"|"none"|"unsupported", "keap_id", "body", "update_mask",
--    "tags_add", "tags_remove", "email", "pushed", "reason"}
-- `pushed` is what to hand back to mark_pushed once Keap accepted it.
create or replace function keapsync.push_request(p_account uuid, p_type text, p_local_id bigint)
returns jsonb
language plpgsql stable security definer set search_path = '' set timezone to 'UTC'
as $$
declare
  p jsonb := keapsync.pending_push(p_account, p_type, p_local_id);
  op text := p ->> 'op';
  fields jsonb := p -> 'fields';
  keys text[];
  doc jsonb;
  req jsonb;
  pushed jsonb;
begin
  keys := array(select jsonb_object_keys(fields)) || array(select jsonb_array_elements_text(p -> 'cleared'));
  pushed := fields || coalesce((select jsonb_object_agg(c, null) from jsonb_array_elements_text(p -> 'cleared') c), '{}');
  req := jsonb_build_object('op', op, 'keap_id', p -> 'keap_id', 'pushed', pushed);
  if op in ('none', 'delete') then
    if op = 'delete' and p_type not in ('contact', 'order') then
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
  end if;
  return req || jsonb_build_object('op', 'unsupported', 'reason',
    case p_type
      when 'order' then 'Keap''s REST v1 has no order update; change orders in Keap'
      when 'subscription' then 'Keap''s REST v1 cannot change or create subscriptions this way; change them in Keap'
      when 'tag' then 'Keap''s REST v1 has no tag update; rename tags in Keap'
      else format('pushing %s %s is not supported', op, p_type) end);
end;
$$;

revoke execute on function keapsync.enqueue_push(uuid, text, bigint, pg_lsn), keapsync.contact_body(jsonb, text[]),
  keapsync.push_request(uuid, text, bigint) from public;
grant execute on function keapsync.enqueue_push(uuid, text, bigint, pg_lsn), keapsync.push_request(uuid, text, bigint)
  to service_role;
