-- A backfill's page apply no longer slows down as the account grows (issue #18). Profiled per
-- page (backend CPU time, 1000 contacts a page), the apply cost 0.36 s for the first page of a
-- 20k-contact backfill and 1.4 s for the twentieth: each page scanned all of keap.contacts twice,
-- so a backfill's cost grew with the square of its size.
--
-- 1. The new records' tag links (what tag_doc reads) come out of the insert itself, as two arrays
--    (contact id, Keap tag id): the tags and contact_tags inserts no longer join the page's new
--    ids back to keap.contacts, which the planner did with a scan of the whole table (of every
--    account) per page.
-- 2. "Is this record new?" probes sync_state once per record by its unique index. The planner may
--    turn the NOT EXISTS into an anti join that reads every sync_state row of the account and
--    type for each page (planned on an empty table: a materialised scan compared with each
--    record); OFFSET 0 keeps it a probe per record (an EXISTS with an offset is not pulled up
--    into a join).
-- What is stored is unchanged (supabase/tests/page_apply.test.sql compares it with the
-- record-by-record apply, history and KPI summaries included).

create or replace function keapsync.apply_keap_page(p_account uuid, p_type text, p_raws jsonb[]) returns jsonb
language plpgsql security definer set search_path = '' set "TimeZone" = 'UTC'
as $$
declare
  t keapsync.object_types;
  cols text[];
  new_ids bigint[];
  new_keap_ids bigint[];
  link_contacts bigint[];
  link_tags bigint[];
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
                          where st.account_id = $1 and st.object_type = $2 and st.keap_id = src.keap_id
                         offset 0)),
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
        from ins),
    links as (
      select ins.id as contact_id, x.tag::bigint as tag
        from ins, jsonb_array_elements_text(case when $2 = 'contact' and jsonb_typeof(ins.keap_object -> 'tag_ids') = 'array'
                                                 then ins.keap_object -> 'tag_ids' else '[]' end) x(tag))
    select i.ids, i.keap_ids, l.contacts, l.tags
      from (select array_agg(id) as ids, array_agg(keap_id) as keap_ids from ins) i,
           (select array_agg(contact_id) as contacts, array_agg(tag) as tags from links) l$f$,
    t.table_name,
    (select string_agg(format('%I', c), ', ') from unnest(cols) c),
    (select string_agg(case when c = t.map_column then format('coalesce(p.%I, %L)', c, '{}') else format('p.%I', c) end, ', ')
       from unnest(cols) c))
    into new_ids, new_keap_ids, link_contacts, link_tags using p_account, p_type, p_raws;

  if link_tags is not null then
    -- In one order, so that two pages applied at once take their locks on new tags in the same order.
    insert into keap.tags (account_id, keap_id)
    select distinct p_account, u.tag from unnest(link_tags) u(tag) order by 2
    on conflict (account_id, keap_id) do nothing;
    insert into keap.contact_tags (account_id, contact_id, tag_id)
    select p_account, l.contact_id, tg.id
      from unnest(link_contacts, link_tags) l(contact_id, tag)
      join keap.tags tg on tg.account_id = p_account and tg.keap_id = l.tag
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

revoke execute on function keapsync.apply_keap_page(uuid, text, jsonb[]) from public;
grant execute on function keapsync.apply_keap_page(uuid, text, jsonb[]) to service_role;
