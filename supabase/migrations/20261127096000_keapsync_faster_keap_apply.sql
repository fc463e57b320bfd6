-- Faster apply of Keap's records, the bulk of a backfill: nothing here changes what is
-- stored, only how much work storing it takes.
--
-- 1. History of Keap's inserts and deletes goes straight from the transition table into
--    change_history (one pass over the rows instead of a scratch table written and read back).
-- 2. A backfill page's new contacts get their tags from Keap's tag_ids directly, found by id
--    (not by scanning for any of the page's ids), inserted in one order.

create or replace function keapsync.tg_track_change() returns trigger
language plpgsql security definer set search_path = ''
as $$
declare
  origin text := keapsync.current_origin();
  actor uuid := auth.uid();
  -- Bookkeeping columns, not data.
  ignored constant text[] := array['updated_at', 'version', 'sync_origin', 'keap_object', 'created_at'];
  tags boolean := tg_table_name = 'contact_tags';
  v_type text := case when tg_table_name = 'contact_tags' then 'contact'
                      else (select object_type from keapsync.object_types where table_name = tg_table_name) end;
begin
  -- Keap's inserts and deletes (a backfill page, a hook's delete) need only their history: write
  -- it straight from the transition table. The scratch table below is for local changes and
  -- updates, whose bookkeeping reads it several times.
  if origin = 'keap' and tg_op in ('INSERT', 'DELETE') then
    if tg_op = 'INSERT' then
      insert into keapsync.change_history (account_id, table_name, row_id, keap_id, op, origin, changed, actor)
      select (x.r ->> 'account_id')::uuid, tg_table_name, (x.r ->> case when tags then 'contact_id' else 'id' end)::bigint,
             case when tags then (select c.keap_id from keap.contacts c where c.id = (x.r ->> 'contact_id')::bigint)
                  else (x.r ->> 'keap_id')::bigint end,
             'insert', origin, jsonb_strip_nulls(x.r - ignored), actor
        from (select to_jsonb(n) as r from new_rows n offset 0) x;  -- offset 0: to_jsonb once per row
    else
      insert into keapsync.change_history (account_id, table_name, row_id, keap_id, op, origin, changed, old_row, actor)
      select (x.r ->> 'account_id')::uuid, tg_table_name, (x.r ->> case when tags then 'contact_id' else 'id' end)::bigint,
             case when tags then (select c.keap_id from keap.contacts c where c.id = (x.r ->> 'contact_id')::bigint)
                  else (x.r ->> 'keap_id')::bigint end,
             'delete', origin, jsonb_strip_nulls(x.r - ignored), x.r - 'keap_object', actor
        from (select to_jsonb(o) as r from old_rows o offset 0) x;  -- offset 0: to_jsonb once per row
    end if;
    return null;
  end if;

  -- 1. Changes: one row per record (r: the row, o/n: old/new for updates, changed, stamps: the doc
  --    keys touched, for newest_wins).
  --    A session-lifetime scratch table (emptied at commit, and here for each statement), not
  --    one created per transaction: that would churn the catalog on every write.
  if to_regclass('pg_temp.keapsync_changes') is null then
    create temp table keapsync_changes (
      account_id uuid, row_id bigint, keap_id bigint, tag_id bigint, r jsonb, o jsonb, changed jsonb, stamps jsonb
    ) on commit delete rows;
  end if;
  delete from pg_temp.keapsync_changes;
  if tg_op = 'INSERT' then
    insert into pg_temp.keapsync_changes (account_id, row_id, keap_id, tag_id, r, changed)
    select (x.r ->> 'account_id')::uuid, (x.r ->> case when tags then 'contact_id' else 'id' end)::bigint,
           (x.r ->> 'keap_id')::bigint, (x.r ->> 'tag_id')::bigint, x.r, jsonb_strip_nulls(x.r) - ignored
      from (select to_jsonb(n) - 'keap_object' as r from new_rows n) x;
  elsif tg_op = 'DELETE' then
    insert into pg_temp.keapsync_changes (account_id, row_id, keap_id, tag_id, r, o, changed)
    select (x.r ->> 'account_id')::uuid, (x.r ->> case when tags then 'contact_id' else 'id' end)::bigint,
           (x.r ->> 'keap_id')::bigint, (x.r ->> 'tag_id')::bigint, x.r, x.r, jsonb_strip_nulls(x.r) - ignored
      from (select to_jsonb(o) - 'keap_object' as r from old_rows o) x;
  else
    insert into pg_temp.keapsync_changes (account_id, row_id, keap_id, tag_id, r, o, changed)
    select (p.n ->> 'account_id')::uuid, (p.n ->> case when tags then 'contact_id' else 'id' end)::bigint,
           (p.n ->> 'keap_id')::bigint, (p.n ->> 'tag_id')::bigint, p.n - 'keap_object', p.o - 'keap_object', d.changed
      from (select to_jsonb(o) as o, to_jsonb(n) as n from old_rows o join new_rows n
              on coalesce(to_jsonb(o) ->> 'id', (to_jsonb(o) ->> 'contact_id') || '/' || (to_jsonb(o) ->> 'tag_id'))
               = coalesce(to_jsonb(n) ->> 'id', (to_jsonb(n) ->> 'contact_id') || '/' || (to_jsonb(n) ->> 'tag_id'))) p,
           lateral (select jsonb_object_agg(k, jsonb_build_object('old', p.o -> k, 'new', p.n -> k)) as changed
                      from jsonb_object_keys(p.n) k
                     where not (k = any (ignored)) and (p.o -> k) is distinct from (p.n -> k)) d
     where d.changed is not null;
  end if;
  if tags then
    update pg_temp.keapsync_changes c set keap_id = k.keap_id from keap.contacts k where k.id = c.row_id;
  end if;

  -- 2. History.
  insert into keapsync.change_history (account_id, table_name, row_id, keap_id, op, origin, changed,
                                       old_row, new_row, actor)
  select account_id, tg_table_name, row_id, keap_id, lower(tg_op), origin, changed, o,
         case when tg_op = 'UPDATE' then r end, actor
    from pg_temp.keapsync_changes;

  if origin = 'keap' then
    return null;
  end if;

  -- 3. A local change: remember when each doc key changed (newest_wins compares it with Keap's
  --    clock), register local creates, and record local deletes for push or drop their state.
  if tags then
    update pg_temp.keapsync_changes c set stamps = jsonb_build_object('tag.' || t.keap_id, now())
      from keap.tags t where t.id = c.tag_id and t.keap_id is not null;
    update keapsync.sync_state s set local_changed_at = s.local_changed_at || x.stamps
      from (select account_id, row_id, jsonb_object_agg(e.key, e.value) as stamps
              from pg_temp.keapsync_changes, jsonb_each(stamps) e group by 1, 2) x
     where s.account_id = x.account_id and s.object_type = 'contact' and s.local_id = x.row_id;
    return null;
  end if;
  update pg_temp.keapsync_changes c
     set stamps = coalesce((select jsonb_object_agg(k, now()) from jsonb_object_keys(c.changed) k where k <> 'custom_fields'), '{}')
               || coalesce((select jsonb_object_agg('custom_fields.' || e.key, now())
                              from jsonb_each(coalesce(c.r -> 'custom_fields', '{}') || coalesce(c.o -> 'custom_fields', '{}')) e
                             where (c.r -> 'custom_fields' -> e.key) is distinct from (c.o -> 'custom_fields' -> e.key)), '{}');
  if tg_op = 'INSERT' then
    insert into keapsync.sync_state (account_id, object_type, local_id, keap_id, local_changed_at)
    select account_id, v_type, row_id, keap_id, stamps from pg_temp.keapsync_changes
    on conflict (account_id, object_type, local_id) do nothing;
  elsif tg_op = 'DELETE' then
    -- Propagated per the account's setting: the delete waits for push; else the record is simply
    -- no longer synced here.
    update keapsync.sync_state s set local_deleted_at = now()
      from pg_temp.keapsync_changes c join keapsync.settings st on st.account_id = c.account_id
     where st.propagate_deletes and c.keap_id is not null
       and s.account_id = c.account_id and s.object_type = v_type and s.local_id = c.row_id;
    delete from keapsync.sync_state s using pg_temp.keapsync_changes c
     where s.account_id = c.account_id and s.object_type = v_type and s.local_id = c.row_id
       and s.local_deleted_at is null;
  else
    update keapsync.sync_state s set local_changed_at = s.local_changed_at || c.stamps
      from pg_temp.keapsync_changes c
     where s.account_id = c.account_id and s.object_type = v_type and s.local_id = c.row_id;
  end if;
  return null;
end;
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
