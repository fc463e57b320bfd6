-- Applying a Keap record plans its statements once per session, reads the local row once and
-- walks only the fields that need a decision (issue #16: the suite's CPU, and what every
-- backfill, hook and push answer costs). Measured on a changed contact, 600 applies in separate
-- transactions: 1.84-2.03 s of backend CPU before, 1.22-1.48 s after.
--
-- - SQL-language functions that PostgreSQL cannot inline (a SET clause, SECURITY DEFINER, a
--   FROM clause) are planned afresh in every transaction that calls them; plpgsql keeps its
--   plans for the session. flat_doc_typed (two calls an apply), keap_unknown and is_admin took
--   0.10-0.15 ms a call and now take 0.015-0.04. Others tried (keap_doc, keap_content, doc_set,
--   asked_at, set_origin) measured no different and stay SQL.
-- - apply_keap_record read the local row three times by dynamic SQL, each planned anew: to lock
--   it, for its doc (row_doc) and for its Keap object. The locking read now returns the row, and
--   its doc comes from keapsync.row_doc_of. A version with the stored one's stamp that is the
--   stored object exactly is a duplicate without comparing their contents field by field.
--   row_doc(account, type, id), which pending_push reads, reads the row once, not twice.
-- - apply_keap_record's merge loop ran two queries for every field of the record (is the field
--   unknown; is a conflict open on it). The unknown fields and the open conflicts are now read
--   once, and a merged field whose three sides agree, with no conflict open, is not walked.
-- - keapsync.tg_track_change wrote a Keap update's history through its scratch table. Touching
--   that ON COMMIT DELETE ROWS table made commit empty it, which made every statement that names
--   it plan again in the next transaction. An update's history is now written from its row
--   pairs, and Keap's updates, like Keap's inserts and deletes, never touch the scratch table.
-- What is stored, merged and recorded is unchanged; the pgTAP suites that pin it pass as before.

-- A typed row (to_jsonb of a keap.* row) -> flat doc: the merged (and unless p_merged_only, the
-- Keap-owned) columns, the map column expanded key by key, nulls dropped.
create or replace function keapsync.flat_doc_typed(p_type text, p_typed jsonb, p_merged_only boolean default false)
returns jsonb
language plpgsql stable
as $$
begin
  return (
    select coalesce((select pg_catalog.jsonb_object_agg(c, p_typed -> c)
                       from pg_catalog.unnest(case when p_merged_only then t.merge_columns
                                                   else t.merge_columns || t.keap_columns end) c
                      where pg_catalog.jsonb_typeof(p_typed -> c) <> 'null'), '{}')
        || coalesce((select pg_catalog.jsonb_object_agg(t.map_column || '.' || e.key, e.value)
                       from pg_catalog.jsonb_each(case when pg_catalog.jsonb_typeof(p_typed -> t.map_column) = 'object'
                                                       then p_typed -> t.map_column else '{}' end) e
                      where pg_catalog.jsonb_typeof(e.value) <> 'null'), '{}')
      from keapsync.object_types t where t.object_type = p_type);
end;
$$;

-- As in 20261204020000_custom_fields_everywhere.sql.
create or replace function keapsync.keap_unknown(p_type text, p_raw jsonb) returns text[]
language plpgsql stable set search_path = ''
as $$
begin
  return case when p_type <> 'contact' then array(
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
end;
$$;

create or replace function keapsync.is_admin(p_account uuid) returns boolean
language plpgsql stable security definer set search_path = ''
as $$
begin
  return exists (select 1 from keapsync.members m
                  where m.account_id = p_account and m.user_id = (select auth.uid()) and m.role = 'admin');
end;
$$;

-- The doc of a row given whole (to_jsonb of it): what keapsync.row_doc reads the row for, from a
-- row the caller has read already.
create function keapsync.row_doc_of(p_type text, p_row jsonb) returns jsonb
language plpgsql stable set search_path = ''
as $$
begin
  if p_row is null then
    return null;
  end if;
  return keapsync.flat_doc_typed(p_type, p_row)
      || case when p_type = 'contact' then
           coalesce((select jsonb_object_agg('tag.' || tg.keap_id, true)
                       from keap.contact_tags ct join keap.tags tg on tg.id = ct.tag_id
                      where ct.contact_id = (p_row ->> 'id')::bigint and tg.keap_id is not null), '{}')
         else '{}' end;
end;
$$;
revoke execute on function keapsync.row_doc_of(text, jsonb) from public;
grant execute on function keapsync.row_doc_of(text, jsonb) to keapsync_sidecar, service_role;

create or replace function keapsync.row_doc(p_type text, p_local_id bigint) returns jsonb
language plpgsql stable set search_path = '' set timezone to 'UTC'
as $$
declare
  r jsonb;
begin
  execute format('select to_jsonb(x) from keap.%I x where x.id = $1',
                 (select table_name from keapsync.object_types where object_type = p_type))
    into r using p_local_id;
  return keapsync.row_doc_of(p_type, r);
end;
$$;

-- The account's row only (null for another account's): one read, where owns_row and then
-- row_doc made two, each planned anew.
create or replace function keapsync.row_doc(p_account uuid, p_type text, p_local_id bigint) returns jsonb
language plpgsql stable set search_path = '' set timezone to 'UTC'
as $$
declare
  r jsonb;
begin
  execute format('select to_jsonb(x) from keap.%I x where x.id = $1 and x.account_id = $2',
                 (select table_name from keapsync.object_types where object_type = p_type))
    into r using p_local_id, p_account;
  return keapsync.row_doc_of(p_type, r);
end;
$$;

-- As in 20261204000000_equal_stamp_order.sql, with the row read once and only the fields that
-- need a decision walked (see the header).
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
  v_row jsonb;  -- the local row, whole (to_jsonb), read once
  kdoc jsonb;
  kmerged jsonb;
  unknown text[];
  unknown_keys text[];
  open_fields text[];
  undecided text[];
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
  v_asked_at timestamptz := keapsync.asked_at();
  -- The local row by id, locked or not (%s: '' or 'for update', never input).
  row_sql constant text := 'select to_jsonb(x) from keap.%I x where x.id = $1 %s';
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
  -- The row locked is the row read: its doc and its Keap object come from this one read.
  select s.local_id into v_local_id from keapsync.sync_state s
   where s.account_id = p_account and s.object_type = p_type and s.keap_id = v_keap_id;
  if v_local_id is not null then
    execute format(row_sql, t.table_name, 'for update') into v_row using v_local_id;
  end if;
  select * into st from keapsync.sync_state
   where account_id = p_account and object_type = p_type and keap_id = v_keap_id for update;
  if found and st.local_id is distinct from v_local_id then
    -- The record moved to another row between the two reads: read that one (unlocked: its
    -- sync state is locked already, and the lock order must hold).
    execute format(row_sql, t.table_name, '') into v_row using st.local_id;
  end if;
  -- Keap's clock orders versions, but it does not tell every change: a tag applied without a
  -- last_updated bump, two edits within one second at second precision, a payment that leaves
  -- modification_date alone. Only a strictly older version is stale; one with the same stamp
  -- is a duplicate only when its content is the same (tags and custom fields as sets).
  if found and st.keap_modified is not null and v_modified is not null and v_modified < st.keap_modified then
    return 'stale';
  end if;
  -- What the object does not carry (an optional property not asked for, payments not fetched)
  -- cannot differ: it is left out of the stored side too.
  -- The very object stored (a read before a push, a hook's GET of an unchanged record) is the
  -- same content without working it out.
  if found and st.keap_modified is not null and v_modified is not null and v_modified = st.keap_modified
     and (p_raw = v_row -> 'keap_object'
          or keapsync.keap_content(p_type, p_raw)
             = keapsync.keap_content(p_type, (v_row -> 'keap_object')
                                             - array(select ok from jsonb_object_keys(v_row -> 'keap_object') ok
                                                      where not p_raw ? ok))) then
    return 'duplicate';
  end if;
  -- Same stamp, other content, and this version was asked for before the stored one was in: Keap
  -- may have made either first (our PATCH answer and a hook's GET sent before it, both in one
  -- second). Neither is trusted over the other; a read asked for from now on settles it.
  if found and st.keap_modified is not null and v_modified = st.keap_modified
     and v_asked_at < coalesce(st.keap_seen_at, '-infinity') then
    insert into keapsync.webhook_inbox (account_id, event_key, object_type, object_ids, payload)
    select p_account, p_type || '.recheck', p_type, array[v_keap_id], '{}'
     where not exists (select 1 from keapsync.webhook_inbox i
                        where i.account_id = p_account and i.object_type = p_type
                          and i.processed_at is null and v_keap_id = any (i.object_ids));
    return 'ambiguous';
  end if;
  if found and st.local_deleted_at is not null then
    -- Deleted here and the delete awaits push: the delete wins; remember Keap's version only.
    update keapsync.sync_state set keap_modified = v_modified, keap_seen_at = clock_timestamp() where account_id = st.account_id
       and object_type = st.object_type and local_id = st.local_id;
    return 'deleted_locally';
  end if;

  kdoc := keapsync.keap_doc(p_type, p_raw);
  -- Keap's merged fields: the agreed state of a record first met here.
  kmerged := (select coalesce(jsonb_object_agg(e.key, e.value), '{}') from jsonb_each(kdoc) e
               where keapsync.is_merge_key(t, e.key));
  unknown := keapsync.keap_unknown(p_type, p_raw);

  if st.local_id is null then
    execute format('select to_jsonb(x) from keap.%I x where x.account_id = $1 and x.keap_id = $2', t.table_name)
      into v_row using p_account, v_keap_id;
    if v_row is null then
      v_local_id := keapsync.write_row(p_account, p_type, null, v_keap_id, kdoc, p_raw);
      insert into keapsync.sync_state (account_id, object_type, local_id, keap_id, agreed, keap_modified, last_applied_at)
      values (p_account, p_type, v_local_id, v_keap_id,
              kmerged,
              v_modified, now());
      return 'inserted';
    end if;
    -- A row that names this Keap id but was never synced: Keap's values are the truth.
    v_local_id := (v_row ->> 'id')::bigint;
    ldoc := keapsync.row_doc_of(p_type, v_row);
    agreed := ldoc;
    insert into keapsync.sync_state (account_id, object_type, local_id, keap_id)
    values (p_account, p_type, v_local_id, v_keap_id)
    on conflict (account_id, object_type, local_id) do update set keap_id = excluded.keap_id
    returning * into st;
  else
    v_local_id := st.local_id;
    ldoc := keapsync.row_doc_of(p_type, v_row);
    agreed := st.agreed;
    if ldoc is null then  -- the row is gone without a pending delete: bring it back from Keap
      v_local_id := keapsync.write_row(p_account, p_type, null, v_keap_id, kdoc, p_raw);
      update keapsync.sync_state set local_id = v_local_id,
             agreed = kmerged,
             keap_modified = v_modified, keap_seen_at = clock_timestamp(), last_applied_at = now()
       where account_id = st.account_id and object_type = st.object_type and local_id = st.local_id;
      return 'inserted';
    end if;
  end if;

  select q.sent into v_sent from keapsync.push_queue q
   where q.account_id = p_account and q.object_type = p_type and q.local_id = v_local_id;
  -- What the object did not carry is unknown, not removed: such a field counts as unchanged.
  select coalesce(array_agg(j.k), '{}') into unknown_keys
    from jsonb_object_keys(kdoc || ldoc || agreed || coalesce(v_sent, '{}')) j(k)
   where exists (select 1 from unnest(unknown) u where j.k = u or (u like '%.' and starts_with(j.k, u)));

  -- A push whose answer never reached us (a crash, a connection lost between Keap's answer and
  -- mark_pushed) may have landed all the same. A field Keap now holds with exactly the value
  -- that push sent is ours, so it is agreed: not a change made in Keap, to be merged (and maybe
  -- to win) against what was edited here since.
  for k in select key from jsonb_object_keys(coalesce(v_sent, '{}')) key loop
    continue when k = any (unknown_keys);
    if nullif(v_sent -> k, 'null'::jsonb) is not distinct from kdoc -> k then
      agreed := keapsync.doc_set(agreed, k, kdoc -> k);
    end if;
  end loop;

  -- Keap-owned fields: Keap's value, always.
  new_local := (ldoc - array(select j.k from jsonb_object_keys(ldoc) j(k) where not keapsync.is_merge_key(t, j.k)))
            || (select coalesce(jsonb_object_agg(e.key, e.value), '{}') from jsonb_each(kdoc) e
                 where not keapsync.is_merge_key(t, e.key));
  new_agreed := agreed;
  -- Merged fields: one whose three sides agree, with no conflict open on it, needs no decision
  -- (most fields of most applies); the others are walked in the docs' key order.
  select coalesce(array_agg(c.field), '{}') into open_fields from keapsync.conflicts c
   where c.account_id = p_account and c.object_type = p_type and c.local_id = v_local_id and c.status = 'open';
  select coalesce(array_agg(d.k order by d.n), '{}') into undecided
    from (select j.k, j.n, case when j.k = any (unknown_keys) then agreed -> j.k else kdoc -> j.k end as kv
            from jsonb_object_keys(kdoc || ldoc || agreed) with ordinality j(k, n)
           where keapsync.is_merge_key(t, j.k)) d
   where d.k = any (open_fields) or jsonb_typeof(d.kv) = 'null'
      or d.kv is distinct from ldoc -> d.k or d.kv is distinct from agreed -> d.k;
  foreach k in array undecided loop
    av := agreed -> k;
    lv := ldoc -> k;
    kv := case when k = any (unknown_keys) then av else kdoc -> k end;
    open_conflict := null;
    if k = any (open_fields) then
      select * into open_conflict from keapsync.conflicts
       where account_id = p_account and object_type = p_type and local_id = v_local_id
         and field = k and status = 'open';
    end if;

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

  if new_local is distinct from ldoc or p_raw is distinct from v_row -> 'keap_object' then
    perform keapsync.write_row(p_account, p_type, v_local_id, v_keap_id, new_local, p_raw);
  end if;
  update keapsync.sync_state
     set agreed = new_agreed, keap_modified = coalesce(v_modified, keap_modified), keap_seen_at = clock_timestamp(),
         last_applied_at = now()
   where account_id = p_account and object_type = p_type and local_id = v_local_id;
  -- 'updated' when data changed, not merely Keap's version clock.
  return case when (new_local - array['last_updated', 'modification_date', 'modification_time'])
                   is distinct from (ldoc - array['last_updated', 'modification_date', 'modification_time'])
              then 'updated' else 'unchanged' end;
end;
$$;

-- As in 20261204120000_writes_that_change_nothing.sql, with an update's history written from its
-- row pairs (see the header).
create or replace function keapsync.tg_track_change() returns trigger
language plpgsql security definer set search_path = ''
as $$
declare
  origin text;
  actor uuid;
  -- Bookkeeping columns, not data.
  ignored constant text[] := array['updated_at', 'version', 'sync_origin', 'keap_object', 'created_at'];
  tags boolean := tg_table_name = 'contact_tags';
  v_type text;
  pairs jsonb[];  -- an update's rows, old and new, and the fields it changed
begin
  -- A statement that touched no row (an upsert that found every row there, a delete that
  -- matched none) has nothing to record.
  if tg_op = 'DELETE' then
    if not exists (select from old_rows) then
      return null;
    end if;
  elsif not exists (select from new_rows) then
    return null;
  end if;
  origin := keapsync.current_origin();
  actor := auth.uid();
  v_type := case when tags then 'contact'
                 else (select object_type from keapsync.object_types where table_name = tg_table_name) end;
  -- Keap's inserts and deletes (a backfill page, a hook's delete) need only their history: write
  -- it straight from the transition table. The scratch table below is for local changes, whose
  -- bookkeeping reads them several times.
  if origin = 'keap' and tg_op in ('INSERT', 'DELETE') then
    if tg_op = 'INSERT' then
      -- The row's data columns, named: to_jsonb of the whole row and then "- ignored" copied
      -- keap_object (the raw record, most of a row's bytes) twice only to drop it. The same keys
      -- and values (supabase/tests/history_keap_insert).
      execute format($f$
        insert into keapsync.change_history (account_id, table_name, row_id, keap_id, op, origin, changed, actor)
        select n.account_id, %1$L, n.%2$I, %3$s, 'insert', $1, pg_catalog.jsonb_strip_nulls(pg_catalog.to_jsonb(d)), $2
          from new_rows n, lateral (select %4$s) d$f$,
        tg_table_name,
        case when tags then 'contact_id' else 'id' end,
        case when tags then '(select c.keap_id from keap.contacts c where c.id = n.contact_id)' else 'n.keap_id' end,
        (select string_agg(format('n.%I', a.attname), ', ' order by a.attnum)
           from pg_catalog.pg_attribute a
          where a.attrelid = tg_relid and a.attnum > 0 and not a.attisdropped and not (a.attname::text = any (ignored))))
      using origin, actor;
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
  if tg_op = 'UPDATE' then
    -- Its rows paired, old with new (offset 0: to_jsonb once per row, not once per row pair the
    -- join compares), with the fields each changed; a row left as it was records nothing.
    select array_agg(jsonb_build_object('o', p.o - 'keap_object', 'n', p.n - 'keap_object', 'changed', d.changed))
      into pairs
      from (select o.r as o, n.r as n
              from (select to_jsonb(x) as r from old_rows x offset 0) o
              join (select to_jsonb(x) as r from new_rows x offset 0) n
                on coalesce(o.r ->> 'id', (o.r ->> 'contact_id') || '/' || (o.r ->> 'tag_id'))
                 = coalesce(n.r ->> 'id', (n.r ->> 'contact_id') || '/' || (n.r ->> 'tag_id'))) p,
           lateral (select jsonb_object_agg(k, jsonb_build_object('old', p.o -> k, 'new', p.n -> k)) as changed
                      from jsonb_object_keys(p.n) k
                     where not (k = any (ignored)) and (p.o -> k) is distinct from (p.n -> k)) d
     where d.changed is not null;
    insert into keapsync.change_history (account_id, table_name, row_id, keap_id, op, origin, changed,
                                         old_row, new_row, actor)
    select (p -> 'n' ->> 'account_id')::uuid, tg_table_name, (p -> 'n' ->> case when tags then 'contact_id' else 'id' end)::bigint,
           case when tags then (select c.keap_id from keap.contacts c where c.id = (p -> 'n' ->> 'contact_id')::bigint)
                else (p -> 'n' ->> 'keap_id')::bigint end,
           'update', origin, p -> 'changed', p -> 'o', p -> 'n', actor
      from unnest(pairs) p;
    -- Keap's update needs only its history: the scratch table below is not touched, so it is not
    -- emptied at commit either (which would make every statement that names it plan again).
    if origin = 'keap' then
      return null;
    end if;
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
    select (p -> 'n' ->> 'account_id')::uuid, (p -> 'n' ->> case when tags then 'contact_id' else 'id' end)::bigint,
           (p -> 'n' ->> 'keap_id')::bigint, (p -> 'n' ->> 'tag_id')::bigint, p -> 'n', p -> 'o', p -> 'changed'
      from unnest(pairs) p;
  end if;

  -- 2. History (an update's is written above).
  if tg_op <> 'UPDATE' then
    if tags then
      update pg_temp.keapsync_changes c set keap_id = k.keap_id from keap.contacts k where k.id = c.row_id;
    end if;
    insert into keapsync.change_history (account_id, table_name, row_id, keap_id, op, origin, changed, old_row, actor)
    select account_id, tg_table_name, row_id, keap_id, lower(tg_op), origin, changed, o, actor
      from pg_temp.keapsync_changes;
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
