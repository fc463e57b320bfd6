-- A cheaper apply of a backfill's pages (issue #18): nothing here changes what is stored, only
-- how much work storing it takes.
--
-- 1. keap_modified runs for every record applied, twice for a new one. As a SQL function that
--    PostgreSQL cannot inline (its generic branch holds a subquery) each call ran its own small
--    query, and keap_time inside it another; in plpgsql it is two simple expressions, keap_time
--    inlined into them (its argument is a variable).
-- 2. keap_columns_of, run for every record applied, is plpgsql too: the fields are simple
--    expressions, and only a list of more than one entry (emails, phones, addresses) or custom
--    fields run a query. As one SQL expression, each call started a plan of a dozen nodes.
-- 3. apply_keap_page takes the page as an array of jsonb, which the sidecar sends as one
--    parameter: no staging table, and no jsonb_agg of the page into one document that the
--    apply then takes apart again (three times: the id check, the insert, the merge loop).
--    apply_keap_batch, for a page given as one JSON array, is now that split and a call.

create or replace function keapsync.keap_modified(p_type text, p_raw jsonb) returns timestamptz
language plpgsql stable
as $$
declare
  v text := case p_type
    when 'contact' then coalesce(p_raw ->> 'last_updated', p_raw ->> 'update_time')
    when 'order' then coalesce(p_raw ->> 'modification_date', p_raw ->> 'modification_time')
    when 'subscription' then p_raw ->> 'modification_time'
    when 'tag' then p_raw ->> 'update_time' end;
begin
  if p_type not in ('contact', 'order', 'subscription', 'tag') then
    v := p_raw #>> (select t.modified_path from keapsync.object_types t where t.object_type = p_type);
  end if;
  return keapsync.keap_time(v);
end;
$$;

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
    if pg_catalog.jsonb_typeof(p_raw -> 'custom_fields') = 'array' then
      cf := pg_catalog.jsonb_build_object('custom_fields', coalesce(
              (select pg_catalog.jsonb_object_agg(x ->> 'id', x -> 'content')
                 from pg_catalog.jsonb_array_elements(p_raw -> 'custom_fields') x
                where x ->> 'id' is not null and pg_catalog.jsonb_typeof(x -> 'content') <> 'null'), '{}'));
    end if;
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
    end;
  end if;
  return
    (select pg_catalog.jsonb_object_agg(e.key, p_raw #>> array(select pg_catalog.jsonb_array_elements_text(e.value)))
       from keapsync.object_types t, pg_catalog.jsonb_each(t.keap_paths) e
      where t.object_type = p_type);
end;
$$;

create function keapsync.apply_keap_page(p_account uuid, p_type text, p_raws jsonb[]) returns jsonb
language plpgsql security definer set search_path = '' set "TimeZone" = 'UTC'
as $$
declare
  t keapsync.object_types;
  cols text[];
  new_ids bigint[];
  new_keap_ids bigint[];
  outcomes jsonb := '{}';
  r jsonb;
  o text;
begin
  perform keapsync.require_admin(p_account);
  select * into t from keapsync.object_types where object_type = p_type;
  if not found then
    raise exception 'keapsync: unknown object type %', p_type using errcode = '22023';
  end if;
  if exists (select 1 from unnest(p_raws) x where x ->> 'id' is null) then
    raise exception 'keapsync: % from Keap has no id', p_type using errcode = '22023';
  end if;
  perform keapsync.set_origin('keap');
  cols := t.merge_columns || t.keap_columns || case when t.map_column is null then '{}'::text[] else array[t.map_column] end;

  -- New records, newest version of each id, in one statement; a record a concurrent apply
  -- inserted first is left to the per-record path below.
  execute format($f$
    with src as (
      select distinct on (keap_id) raw, keap_id
        from (select x as raw, (x ->> 'id')::bigint as keap_id, keapsync.keap_modified($2, x) as modified
                from unnest($3) x) s
       order by keap_id, modified desc nulls last),
    fresh as (
      select * from src
       where not exists (select 1 from keapsync.sync_state st
                          where st.account_id = $1 and st.object_type = $2 and st.keap_id = src.keap_id)),
    ins as (
      insert into keap.%1$I (account_id, keap_id, keap_object, %2$s)
      select $1, f.keap_id, f.raw, %3$s
        from fresh f, jsonb_populate_record(null::keap.%1$I, keapsync.keap_columns_of($2, f.raw)) p
      on conflict (account_id, keap_id) do nothing
      returning *),
    st as (
      insert into keapsync.sync_state (account_id, object_type, local_id, keap_id, agreed, keap_modified, last_applied_at)
      select $1, $2, ins.id, ins.keap_id,
             keapsync.merge_doc($2, to_jsonb(ins)) || case when $2 = 'contact' then keapsync.tag_doc(ins.keap_object) else '{}' end,
             keapsync.keap_modified($2, ins.keap_object), now()
        from ins)
    select array_agg(id), array_agg(keap_id) from ins$f$,
    t.table_name,
    (select string_agg(format('%I', c), ', ') from unnest(cols) c),
    (select string_agg(case when c = t.map_column then format('coalesce(p.%I, %L)', c, '{}') else format('p.%I', c) end, ', ')
       from unnest(cols) c))
    into new_ids, new_keap_ids using p_account, p_type, p_raws;

  if p_type = 'contact' and new_ids is not null then
    -- The tag ids straight from Keap's objects (what tag_doc reads), in one order, so that two
    -- pages applied at once take their locks on new tags in the same order.
    insert into keap.tags (account_id, keap_id)
    select distinct p_account, x.tag::bigint
      from unnest(new_ids) n(id) join keap.contacts c on c.id = n.id,
           jsonb_array_elements_text(case when jsonb_typeof(c.keap_object -> 'tag_ids') = 'array'
                                          then c.keap_object -> 'tag_ids' else '[]' end) x(tag)
     order by 2
    on conflict (account_id, keap_id) do nothing;
    insert into keap.contact_tags (account_id, contact_id, tag_id)
    select p_account, c.id, tg.id
      from unnest(new_ids) n(id) join keap.contacts c on c.id = n.id,
           jsonb_array_elements_text(case when jsonb_typeof(c.keap_object -> 'tag_ids') = 'array'
                                          then c.keap_object -> 'tag_ids' else '[]' end) x(tag),
           keap.tags tg
     where tg.account_id = p_account and tg.keap_id = x.tag::bigint
    on conflict do nothing;
  end if;
  if p_type = 'order' and new_ids is not null then
    perform keapsync.write_order_children(p_account, o.id, o.keap_object)
       from keap.orders o where o.id = any (new_ids) order by o.id;
  end if;
  outcomes := jsonb_build_object('inserted', coalesce(cardinality(new_ids), 0));

  -- Everything else merges record by record, in the page's order. Older copies of an id inserted
  -- above are skipped: the insert took the newest version, and an older one would only be 'stale'.
  for r in
    select x from unnest(p_raws) x
     where not ((x ->> 'id')::bigint = any (coalesce(new_keap_ids, '{}')))
  loop
    o := keapsync.apply_keap_record(p_account, p_type, r);
    outcomes := outcomes || jsonb_build_object(o, coalesce((outcomes ->> o)::int, 0) + 1);
  end loop;
  return outcomes;
end;
$$;

create or replace function keapsync.apply_keap_batch(p_account uuid, p_type text, p_raws jsonb) returns jsonb
language plpgsql security definer set search_path = ''
as $$
begin
  if jsonb_typeof(p_raws) <> 'array' then
    -- The refusals in the order they always came: the caller, the type, then the page.
    perform keapsync.require_admin(p_account);
    if not exists (select 1 from keapsync.object_types where object_type = p_type) then
      raise exception 'keapsync: unknown object type %', p_type using errcode = '22023';
    end if;
    raise exception 'keapsync: apply_keap_batch wants a JSON array of % objects', p_type using errcode = '22023';
  end if;
  return keapsync.apply_keap_page(p_account, p_type, array(select x from jsonb_array_elements(p_raws) x));
end;
$$;

revoke execute on function keapsync.apply_keap_page(uuid, text, jsonb[]) from public;
grant execute on function keapsync.apply_keap_page(uuid, text, jsonb[]) to service_role;
