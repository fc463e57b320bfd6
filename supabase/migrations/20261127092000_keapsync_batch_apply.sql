-- Set-based apply for backfill and reconcile pages. Records keapsync has never seen (the bulk of
-- a backfill) are inserted with one statement; every other record goes through the same
-- per-record three-way merge as a hook (apply_keap_record), so the rules stay in one place.

-- The merged part of a typed row (to_jsonb of a keap.* row): what becomes the agreed state.
create or replace function keapsync.merge_doc(p_type text, p_row jsonb) returns jsonb
language sql stable
as $$
  select keapsync.flat_doc_typed(p_type, p_row, true);
$$;

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
    insert into keap.tags (account_id, keap_id)
    select distinct p_account, substr(k, 5)::bigint
      from keap.contacts c, jsonb_object_keys(keapsync.tag_doc(c.keap_object)) k
     where c.id = any (new_ids)
    on conflict (account_id, keap_id) do nothing;
    insert into keap.contact_tags (account_id, contact_id, tag_id)
    select p_account, c.id, tg.id
      from keap.contacts c, jsonb_object_keys(keapsync.tag_doc(c.keap_object)) k, keap.tags tg
     where c.id = any (new_ids) and tg.account_id = p_account and tg.keap_id = substr(k, 5)::bigint
    on conflict do nothing;
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

revoke execute on function keapsync.merge_doc(text, jsonb),
  keapsync.apply_keap_batch(uuid, text, jsonb) from public;
grant execute on function keapsync.apply_keap_batch(uuid, text, jsonb) to service_role;
