-- Two versions of one record with the same Keap stamp and other content (whole-second stamps: our
-- PATCH answer and a Keap-side edit in the same second, or a hook's GET sent before our PATCH
-- and applied after its answer) used to be ordered by arrival: the later apply won, and an older
-- version could overwrite the newer one for good (law 3: arrival time never decides).
--
-- What does order them is when each was asked for. A version read by a request sent after
-- another version was applied is at least as new as that one. So the stored version now keeps
-- when it was applied (sync_state.keap_seen_at, the database's clock, after its answer came),
-- and whoever applies a version says when it asked for it (set_asked_at, the database's clock,
-- before the request went). An equal stamp with other content is merged when it was asked for
-- after the stored version was in; otherwise Keap may have made either first, so neither is
-- trusted over the other: the stored one stays and a fresh read is queued in the inbox (its
-- request goes after this, so it settles the tie). A caller that does not say when it asked is
-- merged as before.

alter table keapsync.sync_state add column keap_seen_at timestamptz;
alter table keapsync.sync_state alter column keap_seen_at set default clock_timestamp();
comment on column keapsync.sync_state.keap_seen_at is
  'When the stored Keap version (keap_modified) was applied, on the database''s clock: a read asked for after this returns it or a newer one.';

-- The time (database clock, taken before the request was sent) at which the Keap versions this
-- transaction applies were asked for. Transaction-local, like the origin.
create function keapsync.set_asked_at(p_at timestamptz) returns void
language sql volatile set search_path = ''
as $$
  select set_config('keapsync.asked_at', coalesce(p_at::text, ''), true);
$$;

create function keapsync.asked_at() returns timestamptz
language sql stable set search_path = ''
as $$
  select nullif(current_setting('keapsync.asked_at', true), '')::timestamptz;
$$;

revoke execute on function keapsync.set_asked_at(timestamptz) from public;
revoke execute on function keapsync.asked_at() from public;

-- As in 20261203130000_orders_children_and_content_apply.sql, with the equal-stamp rule above and
-- keap_seen_at kept wherever keap_modified is.
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
  v_asked_at timestamptz := keapsync.asked_at();
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
             keap_modified = v_modified, keap_seen_at = clock_timestamp(), last_applied_at = now()
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
     set agreed = new_agreed, keap_modified = coalesce(v_modified, keap_modified), keap_seen_at = clock_timestamp(),
         last_applied_at = now()
   where account_id = p_account and object_type = p_type and local_id = v_local_id;
  -- 'updated' when data changed, not merely Keap's version clock.
  return case when (new_local - array['last_updated', 'modification_date', 'modification_time'])
                   is distinct from (ldoc - array['last_updated', 'modification_date', 'modification_time'])
              then 'updated' else 'unchanged' end;
end;
$$;
