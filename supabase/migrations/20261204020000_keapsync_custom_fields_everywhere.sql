-- Custom fields by name for every synced type whose Keap records carry them (issue #17,
-- requirement 3; contacts came first, 20261203232000_keapsync_custom_fields_by_name.sql).
-- Read through the APIs keapsync uses, these carry a custom_fields list:
--   contact      v1 Contact          [{"id": 12, "content": ...}]        model GET /v1/contacts/model
--   company      v2 Company          [{"id": "12", "content": ...}]      model GET /v2/companies/model
--   task         v2 Task             (the same)                          model GET /v2/tasks/model
--   opportunity  v2 RestV2Opportunity (the same)                         model GET /v2/opportunities/model
--   subscription v2 Subscription     (the same)                          model GET /v2/subscriptions/model
-- Each keeps its values in a custom_fields jsonb keyed by field id, as contacts do, and is marked
-- by keapsync.object_types.map_column = 'custom_fields': that one mark makes the row's values part
-- of its doc (custom_fields.<id>, merged and pushed key by key, as for contacts), gives the type
-- a keap.<table>_custom view (refresh_custom_views walks the registry) and makes the sidecar read
-- the type's model on every backfill and reconcile (the Go registry names the model's path; a
-- test holds the two together). Subscriptions are not written to Keap (push_request parks a
-- local change with the reason), so a write through keap.subscriptions_custom is parked too.
-- Notes (read through v1), orders (v1), products, tags and opportunity stages carry none.

alter table keap.companies add column custom_fields jsonb not null default '{}';
alter table keap.tasks add column custom_fields jsonb not null default '{}';
alter table keap.opportunities add column custom_fields jsonb not null default '{}';
alter table keap.subscriptions add column custom_fields jsonb not null default '{}';
comment on column keap.companies.custom_fields is 'Keap''s custom-field values by field id; by label in keap.companies_custom';
comment on column keap.tasks.custom_fields is 'Keap''s custom-field values by field id; by label in keap.tasks_custom';
comment on column keap.opportunities.custom_fields is 'Keap''s custom-field values by field id; by label in keap.opportunities_custom';
comment on column keap.subscriptions.custom_fields is 'Keap''s custom-field values by field id; by label in keap.subscriptions_custom';

update keapsync.object_types set map_column = 'custom_fields'
 where object_type in ('company', 'task', 'opportunity', 'subscription');

-- A Keap object's custom_fields list as the column p_column holding the values by id (v1's
-- numeric ids and v2's string ids name the same key); entries without an id or with null
-- content are left out. Nothing ('{}') when the object has no list (a value not sent is not
-- cleared) or the type keeps no custom fields (p_column null).
create function keapsync.keap_custom_columns(p_column text, p_raw jsonb) returns jsonb
language sql immutable set search_path = ''
as $$
  select case when p_column is not null and pg_catalog.jsonb_typeof(p_raw -> 'custom_fields') = 'array'
    then pg_catalog.jsonb_build_object(p_column, coalesce(
           (select pg_catalog.jsonb_object_agg(x ->> 'id', x -> 'content')
              from pg_catalog.jsonb_array_elements(p_raw -> 'custom_fields') x
             where x ->> 'id' is not null and pg_catalog.jsonb_typeof(x -> 'content') <> 'null'), '{}'))
    else '{}' end;
$$;
revoke execute on function keapsync.keap_custom_columns(text, jsonb) from public;

-- keap_columns_of as 20261203235000 left it, the custom values read by keap_custom_columns, for
-- contacts, subscriptions and every registry type that keeps custom fields.
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

-- keap_body as 20261203231000 left it, plus custom fields: when any changed, the body carries
-- the record's whole list. Keap's v2 documents a list in a PATCH as replacing the one it has (an
-- item not listed is removed) and refuses null content, so a cleared value is one left out, and
-- the others are all sent. Ids as the type's API takes them (number_ids).
create or replace function keapsync.keap_body(p_type text, p_doc jsonb, p_keys text[]) returns jsonb
language plpgsql stable set search_path = ''
as $$
declare
  paths jsonb := (select t.keap_paths || coalesce(t.keap_write_paths, '{}') from keapsync.object_types t where t.object_type = p_type);
  writable text[] := (select t.merge_columns from keapsync.object_types t where t.object_type = p_type);
  numbers boolean := (select t.number_ids from keapsync.object_types t where t.object_type = p_type);
  map text := (select t.map_column from keapsync.object_types t where t.object_type = p_type);
  groups text[];
  body jsonb := '{}';
  c text;
  p text[];
  v jsonb;
begin
  groups := array(select distinct paths -> k ->> 0 from unnest(p_keys) k where k = any (writable) and paths ? k order by 1);
  foreach c in array writable loop
    p := array(select jsonb_array_elements_text(paths -> c));
    if not (p[1] = any (groups)) then
      continue;
    end if;
    v := p_doc -> c;
    if not numbers and jsonb_typeof(v) = 'number' and (p[array_length(p, 1)] = 'id' or p[array_length(p, 1)] like '%\_id') then
      v := to_jsonb(v #>> '{}');
    end if;
    if array_length(p, 1) = 1 then
      body := body || jsonb_build_object(p[1], v);
    elsif p_doc ? c then
      body := body || jsonb_build_object(p[1], coalesce(body -> p[1], '{}') || jsonb_build_object(p[2], v));
    end if;
  end loop;
  if map is not null and exists (select 1 from unnest(p_keys) k where starts_with(k, map || '.')) then
    body := body || jsonb_build_object('custom_fields', coalesce(
      (select jsonb_agg(jsonb_build_object('id', case when numbers then to_jsonb(f.id) else to_jsonb(f.id::text) end,
                                           'content', f.content) order by f.id)
         from (select substr(e.key, length(map) + 2)::bigint as id, e.value as content
                 from jsonb_each(p_doc) e
                where starts_with(e.key, map || '.') and substr(e.key, length(map) + 2) ~ '^[0-9]{1,18}$'
                  and jsonb_typeof(e.value) <> 'null') f), '[]'));
    groups := groups || 'custom_fields'::text;
  end if;
  return jsonb_build_object('body', body, 'update_mask', to_jsonb(groups));
end;
$$;
revoke execute on function keapsync.keap_body(text, jsonb, text[]) from public;

-- What a Keap object did not carry is unknown, not removed (apply_keap_record leaves it as it
-- is): as before for contacts, and for every type with custom fields, its values when the object
-- has no custom_fields list (v2 sends it only when asked for).
create or replace function keapsync.keap_unknown(p_type text, p_raw jsonb) returns text[]
language sql stable set search_path = ''
as $$
  select case when p_type <> 'contact' then array(
    select t.map_column || '.' from keapsync.object_types t
     where t.object_type = p_type and t.map_column is not null
       and pg_catalog.jsonb_typeof(p_raw -> 'custom_fields') is distinct from 'array')
  else array(
    select key from (values
      ('given_name', 'given_name'), ('middle_name', 'middle_name'), ('family_name', 'family_name'),
      ('email', 'email_addresses'), ('phone', 'phone_numbers'),
      ('job_title', 'job_title'), ('owner_id', 'owner_id'), ('lead_source_id', 'lead_source_id'),
      ('address_line1', 'addresses'), ('address_line2', 'addresses'), ('locality', 'addresses'),
      ('region', 'addresses'), ('postal_code', 'addresses'), ('country_code', 'addresses'),
      ('custom_fields.', 'custom_fields'), ('tag.', 'tag_ids')) m(key, source)
     where not (p_raw ? m.source))
  end;
$$;
revoke execute on function keapsync.keap_unknown(text, jsonb) from public;

-- The new types' views (refresh_custom_views walks every type with a map_column) and the
-- sidecar's rights on them.
select keapsync.refresh_custom_views();
select keapsync.grant_sidecar_rls();
