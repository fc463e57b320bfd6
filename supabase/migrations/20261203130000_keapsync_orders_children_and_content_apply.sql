-- Real Keap, not our assumptions (issue #13): order items and payments, and apply by content.
--
-- 1. A fetched version whose stamp equals the stored one but whose content differs is merged;
--    only a strictly older one is stale. Keap may not bump last_updated when a tag is applied,
--    may stamp at whole seconds (two edits, one stamp), and may take a payment without touching
--    an order's modification_date (FACTS §7 leaves all three open). Content compares as
--    keap_content: the flat doc (tags and custom fields are keys, so they compare as sets), plus
--    an order's items and payments keyed by id.
-- 2. An order's items (inline in v1's order object, `order_items`) and payments (GET
--    /v1/orders/{id}/payments, which the sidecar adds to the object as `payments`) land in
--    keap.order_items and keap.order_payments. Items are replaced whenever the object carries
--    them; payments only when it carries `payments` (absent: not fetched, keep what is here).
--    Deleting an order removes both (foreign keys, on delete cascade).

-- A JSON array of objects with ids -> an object keyed by id, so order does not matter.
create or replace function keapsync.keyed_by_id(p_list jsonb) returns jsonb
language sql immutable set search_path = ''
as $$
  select coalesce((select jsonb_object_agg(coalesce(x ->> 'id', x ->> 'payment_id', md5(x::text)), x)
                     from jsonb_array_elements(case when jsonb_typeof(p_list) = 'array' then p_list else '[]' end) x
                    where jsonb_typeof(x) = 'object'), '{}');
$$;

-- The content of a Keap object as the apply compares it: what changes the synced rows.
create or replace function keapsync.keap_content(p_type text, p_raw jsonb) returns jsonb
language sql stable set search_path = '' set timezone to 'UTC'
as $$
  select case when p_raw is null then null else
    keapsync.keap_doc(p_type, p_raw)
    || case when p_type = 'order' then
         jsonb_build_object('order_items', keapsync.keyed_by_id(p_raw -> 'order_items'))
         || case when p_raw ? 'payments' then jsonb_build_object('payments', keapsync.keyed_by_id(p_raw -> 'payments'))
                 else '{}' end
       else '{}' end
  end;
$$;

-- Make an order's item and payment rows match Keap's object. Items: whenever the object carries
-- `order_items` (v1 always does). Payments: only when it carries `payments`.
create or replace function keapsync.write_order_children(p_account uuid, p_order_id bigint, p_raw jsonb)
returns void
language plpgsql volatile set search_path = '' set timezone to 'UTC'
as $$
begin
  if not exists (select 1 from keap.orders o where o.id = p_order_id and o.account_id = p_account) then
    raise exception 'keapsync: order % is not in account %', p_order_id, p_account using errcode = '42501';
  end if;
  if jsonb_typeof(p_raw -> 'order_items') = 'array' then
    delete from keap.order_items i
     where i.order_id = p_order_id
       and not exists (select 1 from jsonb_array_elements(p_raw -> 'order_items') x
                        where jsonb_typeof(x) = 'object' and (x ->> 'id')::bigint = i.keap_id);
    insert into keap.order_items as i (account_id, order_id, keap_id, product_id, name, description, item_type,
                                       quantity, price, keap_object)
    select distinct on ((x ->> 'id')::bigint)
           p_account, p_order_id, (x ->> 'id')::bigint, coalesce(x -> 'product' ->> 'id', x ->> 'product_id')::bigint,
           coalesce(nullif(x ->> 'name', ''), x -> 'product' ->> 'name', x -> 'product' ->> 'product_name'),
           x ->> 'description', coalesce(x ->> 'type', x ->> 'item_type'),
           round((x ->> 'quantity')::numeric)::integer, (x ->> 'price')::numeric, x
      from jsonb_array_elements(p_raw -> 'order_items') x
     where jsonb_typeof(x) = 'object' and x ->> 'id' is not null
    on conflict (order_id, keap_id) do update
       set product_id = excluded.product_id, name = excluded.name, description = excluded.description,
           item_type = excluded.item_type, quantity = excluded.quantity, price = excluded.price,
           keap_object = excluded.keap_object
     where i.keap_object is distinct from excluded.keap_object;
  end if;
  if jsonb_typeof(p_raw -> 'payments') = 'array' then
    delete from keap.order_payments p
     where p.order_id = p_order_id
       and not exists (select 1 from jsonb_array_elements(p_raw -> 'payments') x
                        where jsonb_typeof(x) = 'object' and coalesce(x ->> 'id', x ->> 'payment_id')::bigint = p.keap_id);
    insert into keap.order_payments as p (account_id, order_id, keap_id, amount, pay_date, pay_status, invoice_id,
                                          note, last_updated, keap_object)
    select distinct on (coalesce(x ->> 'id', x ->> 'payment_id')::bigint)
           p_account, p_order_id, coalesce(x ->> 'id', x ->> 'payment_id')::bigint, (x ->> 'amount')::numeric,
           keapsync.keap_time(x ->> 'pay_date'), x ->> 'pay_status', (x ->> 'invoice_id')::bigint,
           x ->> 'note', keapsync.keap_time(x ->> 'last_updated'), x
      from jsonb_array_elements(p_raw -> 'payments') x
     where jsonb_typeof(x) = 'object' and coalesce(x ->> 'id', x ->> 'payment_id') is not null
    on conflict (order_id, keap_id) do update
       set amount = excluded.amount, pay_date = excluded.pay_date, pay_status = excluded.pay_status,
           invoice_id = excluded.invoice_id, note = excluded.note, last_updated = excluded.last_updated,
           keap_object = excluded.keap_object
     where p.keap_object is distinct from excluded.keap_object;
  end if;
end;
$$;

-- As in 20261127080100_sync_rules.sql, plus an order's items and payments.
create or replace function keapsync.write_row(
  p_account uuid, p_type text, p_local_id bigint, p_keap_id bigint, p_doc jsonb, p_raw jsonb)
returns bigint
language plpgsql volatile set search_path = '' set timezone to 'UTC'
as $$
declare
  t keapsync.object_types;
  cols jsonb := '{}';
  c text;
  collist text;
  id bigint := p_local_id;
  n integer;
begin
  select * into strict t from keapsync.object_types where object_type = p_type;
  foreach c in array t.merge_columns || t.keap_columns loop
    cols := cols || jsonb_build_object(c, p_doc -> c);
  end loop;
  if t.map_column is not null then
    cols := cols || jsonb_build_object(t.map_column, coalesce(
      (select jsonb_object_agg(substr(e.key, length(t.map_column) + 2), e.value)
         from jsonb_each(p_doc) e where e.key like t.map_column || '.%'), '{}'));
  end if;
  cols := cols || jsonb_build_object('account_id', p_account, 'keap_id', p_keap_id,
                                     'keap_object', coalesce(p_raw, 'null'::jsonb));
  select string_agg(format('%I', k), ', ') into collist from jsonb_object_keys(cols) k;
  if id is null then
    execute format('insert into keap.%I (%s) select %s from jsonb_populate_record(null::keap.%I, $1) returning id',
                   t.table_name, collist, collist, t.table_name)
      into id using cols;
  else
    if p_raw is null then  -- keep the Keap object we have; this write is local
      cols := cols - 'keap_object';
      select string_agg(format('%I', k), ', ') into collist from jsonb_object_keys(cols) k;
    end if;
    execute format('update keap.%I set (%s) = (select %s from jsonb_populate_record(null::keap.%I, $1)) where id = $2 and account_id = $3',
                   t.table_name, collist, collist, t.table_name)
      using cols, id, p_account;
    get diagnostics n = row_count;
    if n = 0 then
      raise exception 'keapsync: no % % in account %', p_type, id, p_account using errcode = 'P0002';
    end if;
  end if;
  if p_type = 'contact' then
    perform keapsync.write_contact_tags(p_account, id, p_doc);
  elsif p_type = 'order' and p_raw is not null then
    perform keapsync.write_order_children(p_account, id, p_raw);
  end if;
  return id;
end;
$$;

-- As in 20261127097000_push_sent_fields.sql, except that an equal stamp with other content merges.
create or replace function keapsync.apply_keap_record(p_account uuid, p_type text, p_raw jsonb)
returns text
language plpgsql volatile security definer set search_path = '' set timezone to 'UTC'
as $$
declare
  t keapsync.object_types;
  v_keap_id bigint := (p_raw ->> 'id')::bigint;
  v_modified timestamptz := keapsync.keap_modified(p_type, p_raw);
  st keapsync.sync_state;
  v_local_id bigint;
  kdoc jsonb;
  kmerged jsonb;
  unknown text[];
  ldoc jsonb;
  agreed jsonb;
  new_local jsonb;
  new_agreed jsonb;
  k text;
  kv jsonb; lv jsonb; av jsonb;
  pol text;
  local_at timestamptz;
  open_conflict keapsync.conflicts;
  v_sent jsonb;
begin
  perform keapsync.require_admin(p_account);
  select * into t from keapsync.object_types where object_type = p_type;
  if not found then
    raise exception 'keapsync: unknown object type %', p_type using errcode = '22023';
  end if;
  if v_keap_id is null then
    raise exception 'keapsync: % from Keap has no id', p_type using errcode = '22023';
  end if;
  perform keapsync.set_origin('keap');
  -- Serialise concurrent applies of one record (a hook and a reconcile may race).
  perform pg_advisory_xact_lock(hashtextextended(p_account::text || '/' || p_type || '/' || v_keap_id, 0));

  -- Lock order: the local row, then its sync state, as a local edit takes them (the row, then
  -- its trigger's sync_state update), so an apply and an edit of one record cannot deadlock.
  select s.local_id into v_local_id from keapsync.sync_state s
   where s.account_id = p_account and s.object_type = p_type and s.keap_id = v_keap_id;
  if v_local_id is not null then
    execute format('select 1 from keap.%I where id = $1 for update', t.table_name) using v_local_id;
  end if;
  select * into st from keapsync.sync_state
   where account_id = p_account and object_type = p_type and keap_id = v_keap_id for update;
  -- Keap's clock orders versions, but it does not tell every change: a tag applied without a
  -- last_updated bump, two edits within one second at second precision, a payment that leaves
  -- modification_date alone. Only a strictly older version is stale; one with the same stamp
  -- is a duplicate only when its content is the same (tags and custom fields as sets).
  if found and st.keap_modified is not null and v_modified is not null and v_modified < st.keap_modified then
    return 'stale';
  end if;
  -- What the object does not carry (an optional property not asked for, payments not fetched)
  -- cannot differ: it is left out of the stored side too.
  if found and st.keap_modified is not null and v_modified is not null and v_modified = st.keap_modified
     and keapsync.keap_content(p_type, p_raw)
         = (select keapsync.keap_content(p_type, x.keap_object - array(select ok from jsonb_object_keys(x.keap_object) ok
                                                                      where not p_raw ? ok))
              from keapsync.keap_object_of(p_type, st.local_id) x) then
    return 'duplicate';
  end if;
  if found and st.local_deleted_at is not null then
    -- Deleted here and the delete awaits push: the delete wins; remember Keap's version only.
    update keapsync.sync_state set keap_modified = v_modified where account_id = st.account_id
       and object_type = st.object_type and local_id = st.local_id;
    return 'deleted_locally';
  end if;

  kdoc := keapsync.keap_doc(p_type, p_raw);
  -- Keap's merged fields: the agreed state of a record first met here.
  kmerged := (select coalesce(jsonb_object_agg(e.key, e.value), '{}') from jsonb_each(kdoc) e
               where keapsync.is_merge_key(t, e.key));
  unknown := keapsync.keap_unknown(p_type, p_raw);

  if st.local_id is null then
    execute format('select id from keap.%I where account_id = $1 and keap_id = $2', t.table_name)
      into v_local_id using p_account, v_keap_id;
    if v_local_id is null then
      v_local_id := keapsync.write_row(p_account, p_type, null, v_keap_id, kdoc, p_raw);
      insert into keapsync.sync_state (account_id, object_type, local_id, keap_id, agreed, keap_modified, last_applied_at)
      values (p_account, p_type, v_local_id, v_keap_id,
              kmerged,
              v_modified, now());
      return 'inserted';
    end if;
    -- A row that names this Keap id but was never synced: Keap's values are the truth.
    ldoc := keapsync.row_doc(p_type, v_local_id);
    agreed := ldoc;
    insert into keapsync.sync_state (account_id, object_type, local_id, keap_id)
    values (p_account, p_type, v_local_id, v_keap_id)
    on conflict (account_id, object_type, local_id) do update set keap_id = excluded.keap_id
    returning * into st;
  else
    v_local_id := st.local_id;
    ldoc := keapsync.row_doc(p_type, v_local_id);
    agreed := st.agreed;
    if ldoc is null then  -- the row is gone without a pending delete: bring it back from Keap
      v_local_id := keapsync.write_row(p_account, p_type, null, v_keap_id, kdoc, p_raw);
      update keapsync.sync_state set local_id = v_local_id,
             agreed = kmerged,
             keap_modified = v_modified, last_applied_at = now()
       where account_id = st.account_id and object_type = st.object_type and local_id = st.local_id;
      return 'inserted';
    end if;
  end if;

  -- A push whose answer never reached us (a crash, a connection lost between Keap's answer and
  -- mark_pushed) may have landed all the same. A field Keap now holds with exactly the value
  -- that push sent is ours, so it is agreed: not a change made in Keap, to be merged (and maybe
  -- to win) against what was edited here since.
  select q.sent into v_sent from keapsync.push_queue q
   where q.account_id = p_account and q.object_type = p_type and q.local_id = v_local_id;
  for k in select key from jsonb_object_keys(coalesce(v_sent, '{}')) key loop
    continue when exists (select 1 from unnest(unknown) u where k = u or (u like '%.' and starts_with(k, u)));
    if nullif(v_sent -> k, 'null'::jsonb) is not distinct from kdoc -> k then
      agreed := keapsync.doc_set(agreed, k, kdoc -> k);
    end if;
  end loop;

  new_local := ldoc;
  new_agreed := agreed;
  for k in
    select key from jsonb_object_keys(kdoc || ldoc || agreed) key
  loop
    if not keapsync.is_merge_key(t, k) then
      -- Keap-owned: Keap's value, always.
      new_local := case when kdoc ? k then jsonb_set(new_local, array[k], kdoc -> k) else new_local - k end;
      continue;
    end if;
    av := agreed -> k;
    lv := ldoc -> k;
    -- What the object did not carry is unknown, not removed: treat it as unchanged.
    kv := case when exists (select 1 from unnest(unknown) u
                             where k = u or (u like '%.' and starts_with(k, u)))
               then av else kdoc -> k end;

    select * into open_conflict from keapsync.conflicts
     where account_id = p_account and object_type = p_type and local_id = v_local_id
       and field = k and status = 'open';

    if kv is not distinct from lv then
      new_agreed := keapsync.doc_set(new_agreed, k, kv);
      if open_conflict.id is not null then
        update keapsync.conflicts set status = 'resolved', resolution = 'converged', resolved_value = kv,
               resolved_at = now() where id = open_conflict.id;
      end if;
    elsif kv is not distinct from av then
      null;  -- changed only here: keep, it stays pending for push
    elsif lv is not distinct from av then
      new_local := keapsync.doc_set(new_local, k, kv);  -- changed only in Keap: apply
      new_agreed := keapsync.doc_set(new_agreed, k, kv);
    elsif open_conflict.id is not null then
      -- Still parked: keep the newest Keap value beside it for whoever resolves it.
      update keapsync.conflicts set keap_value = kv, keap_modified = v_modified where id = open_conflict.id;
    else
      pol := keapsync.policy_for(p_account, p_type, k);
      if pol = 'newest_wins' then
        local_at := (st.local_changed_at ->> k)::timestamptz;
        pol := case when local_at is not null and (v_modified is null or local_at > v_modified)
                    then 'local_wins' else 'keap_wins' end;
      end if;
      insert into keapsync.conflicts (account_id, object_type, local_id, keap_id, field, base_value,
                                      local_value, keap_value, keap_modified, policy, status, resolution,
                                      resolved_value, resolved_at)
      values (p_account, p_type, v_local_id, v_keap_id, k, av, lv, kv, v_modified,
              keapsync.policy_for(p_account, p_type, k),
              case when pol = 'manual' then 'open' else 'resolved' end,
              case pol when 'keap_wins' then 'keap' when 'local_wins' then 'local' end,
              case pol when 'keap_wins' then kv when 'local_wins' then lv end,
              case when pol = 'manual' then null else now() end);
      if pol = 'keap_wins' then
        new_local := keapsync.doc_set(new_local, k, kv);
        new_agreed := keapsync.doc_set(new_agreed, k, kv);
      elsif pol = 'local_wins' then
        new_agreed := keapsync.doc_set(new_agreed, k, kv);  -- Keap holds kv; ours stays pending
      end if;
    end if;
  end loop;

  if new_local is distinct from ldoc or
     p_raw is distinct from (select x.keap_object from keapsync.keap_object_of(p_type, v_local_id) x) then
    perform keapsync.write_row(p_account, p_type, v_local_id, v_keap_id, new_local, p_raw);
  end if;
  update keapsync.sync_state
     set agreed = new_agreed, keap_modified = coalesce(v_modified, keap_modified), last_applied_at = now()
   where account_id = p_account and object_type = p_type and local_id = v_local_id;
  -- 'updated' when data changed, not merely Keap's version clock.
  return case when (new_local - array['last_updated', 'modification_date', 'modification_time'])
                   is distinct from (ldoc - array['last_updated', 'modification_date', 'modification_time'])
              then 'updated' else 'unchanged' end;
end;
$$;

-- As in 20261127096000_faster_keap_apply.sql, plus new orders' items and payments.
create or replace function keapsync.apply_keap_batch(p_account uuid, p_type text, p_raws jsonb)
returns jsonb
language plpgsql volatile security definer set search_path = '' set timezone to 'UTC'
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
  if jsonb_typeof(p_raws) <> 'array' then
    raise exception 'keapsync: apply_keap_batch wants a JSON array of % objects', p_type using errcode = '22023';
  end if;
  if exists (select 1 from jsonb_array_elements(p_raws) x where x ->> 'id' is null) then
    raise exception 'keapsync: % from Keap has no id', p_type using errcode = '22023';
  end if;
  perform keapsync.set_origin('keap');
  cols := t.merge_columns || t.keap_columns || case when t.map_column is null then '{}'::text[] else array[t.map_column] end;

  -- New records, newest version of each id, in one statement; a record a concurrent apply
  -- inserted first is left to the per-record path below.
  execute format($f$
    with src as (
      select distinct on (keap_id) raw, keap_id
        from (select x as raw, (x ->> 'id')::bigint as keap_id from jsonb_array_elements($3) x) s
       order by keap_id, keapsync.keap_modified($2, raw) desc nulls last),
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

  -- Everything else merges record by record. Older copies of an id inserted above are skipped:
  -- the insert took the newest version, and an older one would only be 'stale'.
  for r in
    select x from jsonb_array_elements(p_raws) x
     where not ((x ->> 'id')::bigint = any (coalesce(new_keap_ids, '{}')))
  loop
    o := keapsync.apply_keap_record(p_account, p_type, r);
    outcomes := outcomes || jsonb_build_object(o, coalesce((outcomes ->> o)::int, 0) + 1);
  end loop;
  return outcomes;
end;
$$;

revoke execute on function keapsync.keap_content(text, jsonb), keapsync.keyed_by_id(jsonb),
  keapsync.write_order_children(uuid, bigint, jsonb) from public;
grant execute on function keapsync.keap_content(text, jsonb), keapsync.keyed_by_id(jsonb),
  keapsync.write_order_children(uuid, bigint, jsonb) to service_role;
