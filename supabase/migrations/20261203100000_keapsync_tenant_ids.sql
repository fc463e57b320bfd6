-- An id answers only inside its account (issue #12). pending_push(A, 'contact', <a contact of B>)
-- checked that the caller administers A, then read the row by its id alone (row_doc) inside a
-- SECURITY DEFINER function: B's whole contact came back, and local ids are sequential. Now every
-- function that takes an account and an id reads and writes that id only if it belongs to the
-- account; a foreign id behaves exactly like one that does not exist.
--
-- The functions that take only an id (resolve_conflict, rollback_change, retry/discard of a dead
-- letter) find the account through the id. To someone who is not a member of that account the
-- id does not exist (P0002, the message of a missing one), so ids of other accounts cannot be
-- probed; a member who is not an admin is told so (42501), as before.

-- Is p_local_id a row of p_account (in the table of p_type)?
create or replace function keapsync.owns_row(p_account uuid, p_type text, p_local_id bigint) returns boolean
language plpgsql stable set search_path = ''
as $$
declare
  v_owned boolean;
begin
  execute format('select exists (select 1 from keap.%I where id = $1 and account_id = $2)',
                 (select table_name from keapsync.object_types where object_type = p_type))
    into v_owned using p_local_id, p_account;
  return v_owned;
end;
$$;

-- The doc of a local row of p_account (null when the account has no such row). The two-argument
-- row_doc stays for the apply path, which reads ids from the account's own rows.
create or replace function keapsync.row_doc(p_account uuid, p_type text, p_local_id bigint) returns jsonb
language sql stable set search_path = ''
as $$
  select case when keapsync.owns_row(p_account, p_type, p_local_id) then keapsync.row_doc(p_type, p_local_id) end;
$$;

-- Gate for the functions that find the account through the id they are given (p_account: the
-- id's account, null when there is no such id): like require_admin, but to a Supabase user who is
-- not a member of the account the thing does not exist (P0002, 'keapsync: no <p_missing>'), the
-- same answer as for an id nobody has.
create or replace function keapsync.require_admin_or_hide(p_account uuid, p_missing text) returns void
language plpgsql stable security definer set search_path = ''
as $$
declare
  v_role text := coalesce(auth.role(), nullif(current_setting('role', true), 'none'));
begin
  if p_account is null or (v_role in ('authenticated', 'anon') and not keapsync.is_member(p_account)) then
    raise exception 'keapsync: no %', p_missing using errcode = 'P0002';
  end if;
  perform keapsync.require_admin(p_account);
end;
$$;

-- As in 20261127080100_sync_rules.sql; an existing row is written only if it is the account's
-- (the update sets account_id, so a foreign id would have carried another account's row over).
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
  end if;
  return id;
end;
$$;

-- As in 20261127080100_sync_rules.sql, touching only the account's tag rows (the composite
-- foreign keys refuse a link to another account's contact or tag).
create or replace function keapsync.write_contact_tags(p_account uuid, p_contact_id bigint, p_doc jsonb)
returns void
language plpgsql volatile set search_path = ''
as $$
declare
  wanted bigint[] := array(select substr(k, 5)::bigint from jsonb_object_keys(p_doc) k where k like 'tag.%');
begin
  insert into keap.tags (account_id, keap_id)
  select p_account, w from unnest(wanted) w
  on conflict (account_id, keap_id) do nothing;

  delete from keap.contact_tags ct using keap.tags tg
   where ct.account_id = p_account and ct.contact_id = p_contact_id and tg.id = ct.tag_id and tg.keap_id is not null
     and not (tg.keap_id = any (wanted));

  insert into keap.contact_tags (account_id, contact_id, tag_id)
  select p_account, p_contact_id, tg.id from keap.tags tg
   where tg.account_id = p_account and tg.keap_id = any (wanted)
  on conflict do nothing;
end;
$$;

-- As in 20261127080100_sync_rules.sql, reading the row only if it is the account's.
create or replace function keapsync.pending_push(p_account uuid, p_type text, p_local_id bigint)
returns jsonb
language plpgsql stable security definer set search_path = '' set timezone to 'UTC'
as $$
declare
  t keapsync.object_types;
  st keapsync.sync_state;
  ldoc jsonb;
  k text;
  fields jsonb := '{}';
  cleared text[] := '{}';
begin
  perform keapsync.require_admin(p_account);
  select * into strict t from keapsync.object_types where object_type = p_type;
  select * into st from keapsync.sync_state
   where account_id = p_account and object_type = p_type and local_id = p_local_id;
  if st.local_deleted_at is not null then
    return jsonb_build_object('op', 'delete', 'keap_id', st.keap_id, 'fields', '{}'::jsonb, 'cleared', '[]'::jsonb);
  end if;
  ldoc := keapsync.row_doc(p_account, p_type, p_local_id);
  if ldoc is null then
    return jsonb_build_object('op', 'none', 'keap_id', st.keap_id, 'fields', '{}'::jsonb, 'cleared', '[]'::jsonb);
  end if;
  for k in select key from jsonb_object_keys(ldoc || coalesce(st.agreed, '{}')) key loop
    continue when not keapsync.is_merge_key(t, k);
    continue when (ldoc -> k) is not distinct from (st.agreed -> k);
    continue when exists (select 1 from keapsync.conflicts c where c.account_id = p_account
                            and c.object_type = p_type and c.local_id = p_local_id
                            and c.field = k and c.status = 'open');
    if ldoc ? k then
      fields := fields || jsonb_build_object(k, ldoc -> k);
    else
      cleared := cleared || k;
    end if;
  end loop;
  return jsonb_build_object(
    'op', case when st.keap_id is null then 'create'
               when fields = '{}' and cardinality(cleared) = 0 then 'none' else 'update' end,
    'keap_id', st.keap_id, 'fields', fields, 'cleared', to_jsonb(cleared));
end;
$$;

-- As in 20261127080100_sync_rules.sql; the Keap id is written back (and a twin removed) only
-- among the account's rows.
create or replace function keapsync.mark_pushed(
  p_account uuid, p_type text, p_local_id bigint, p_pushed jsonb, p_keap_raw jsonb)
returns text
language plpgsql volatile security definer set search_path = '' set timezone to 'UTC'
as $$
declare
  st keapsync.sync_state;
  tbl text := (select table_name from keapsync.object_types where object_type = p_type);
  v_keap_id bigint := (p_keap_raw ->> 'id')::bigint;
  v_twin bigint;
  e record;
begin
  perform keapsync.require_admin(p_account);
  perform keapsync.set_origin('keap');
  select * into st from keapsync.sync_state
   where account_id = p_account and object_type = p_type and local_id = p_local_id for update;
  if not found then
    raise exception 'keapsync: no sync state for % %', p_type, p_local_id using errcode = 'P0002';
  end if;
  if st.local_deleted_at is not null and p_keap_raw is null then
    delete from keapsync.sync_state where account_id = p_account and object_type = p_type and local_id = p_local_id;
    return 'deleted';
  end if;
  if v_keap_id is null then
    raise exception 'keapsync: Keap answer for % % has no id', p_type, p_local_id using errcode = '22023';
  end if;
  if st.keap_id is null then
    -- The create reached Keap before, but its write-back was lost (a crash, a dropped
    -- connection), and a hook meanwhile imported the Keap record as a new row: that row is this
    -- record's twin. Ours keeps its id and data; the twin goes (as Keap's write: not pushed).
    execute format('select id from keap.%I where account_id = $1 and keap_id = $2 and id <> $3', tbl)
      into v_twin using p_account, v_keap_id, p_local_id;
    if v_twin is not null then
      delete from keapsync.sync_state where account_id = p_account and object_type = p_type and local_id = v_twin;
      execute format('delete from keap.%I where id = $1 and account_id = $2', tbl) using v_twin, p_account;
    end if;
    execute format('update keap.%I set keap_id = $1 where id = $2 and account_id = $3', tbl)
      using v_keap_id, p_local_id, p_account;
  end if;
  for e in select key, value from jsonb_each(coalesce(p_pushed, '{}')) loop
    st.agreed := keapsync.doc_set(st.agreed, e.key, e.value);
  end loop;
  update keapsync.sync_state set keap_id = v_keap_id, agreed = st.agreed, last_pushed_at = now()
   where account_id = p_account and object_type = p_type and local_id = p_local_id;
  return keapsync.apply_keap_record(p_account, p_type, p_keap_raw);
end;
$$;

-- As in 20261127080300_resolve_and_rollback.sql: an unknown conflict and another account's
-- look the same; the local row is read and written only within the conflict's account.
create or replace function keapsync.resolve_conflict(p_conflict_id bigint, p_choice text, p_value jsonb default null)
returns keapsync.conflicts
language plpgsql volatile security definer set search_path = '' set timezone to 'UTC'
as $$
declare
  c keapsync.conflicts;
  st keapsync.sync_state;
  ldoc jsonb;
  v jsonb;
begin
  -- Checked before locking: no row lock is taken on a conflict the caller may not see.
  perform keapsync.require_admin_or_hide((select account_id from keapsync.conflicts where id = p_conflict_id),
                                         format('conflict %s', p_conflict_id));
  select * into strict c from keapsync.conflicts where id = p_conflict_id for update;
  if c.status <> 'open' then
    raise exception 'keapsync: conflict % is already %', p_conflict_id, c.status using errcode = '55000';
  end if;
  if p_choice not in ('keap', 'local', 'value') then
    raise exception 'keapsync: resolve with keap, local or value, not %', p_choice using errcode = '22023';
  end if;
  v := case p_choice when 'keap' then c.keap_value when 'local' then c.local_value else p_value end;

  -- The local row before its sync state, the order a local edit takes them in.
  execute format('select 1 from keap.%I where id = $1 and account_id = $2 for update',
                 (select table_name from keapsync.object_types where object_type = c.object_type))
    using c.local_id, c.account_id;
  select * into strict st from keapsync.sync_state
   where account_id = c.account_id and object_type = c.object_type and local_id = c.local_id for update;
  ldoc := keapsync.row_doc(c.account_id, c.object_type, c.local_id);
  perform keapsync.set_origin(case when p_choice = 'keap' then 'keap' else 'resolve' end);
  if ldoc is not null and (ldoc -> c.field) is distinct from v then
    perform keapsync.write_row(c.account_id, c.object_type, c.local_id, st.keap_id,
                               keapsync.doc_set(ldoc, c.field, v), null);
  end if;
  -- Keap holds keap_value now: that is the agreed base, so any other value is pending push.
  update keapsync.sync_state set agreed = keapsync.doc_set(agreed, c.field, c.keap_value)
   where account_id = st.account_id and object_type = st.object_type and local_id = st.local_id;
  update keapsync.conflicts
     set status = 'resolved', resolution = p_choice, resolved_value = v,
         resolved_by = auth.uid(), resolved_at = now()
   where id = p_conflict_id
  returning * into c;
  return c;
end;
$$;

-- As in 20261127080300_resolve_and_rollback.sql: another account's change does not exist for
-- the caller, and every statement stays inside the change's account.
create or replace function keapsync.rollback_change(p_history_id bigint)
returns bigint
language plpgsql volatile security definer set search_path = '' set timezone to 'UTC'
as $$
declare
  h keapsync.change_history;
  t keapsync.object_types;
  restore jsonb := '{}';
  k text;
  cols text;
  new_id bigint;
begin
  perform keapsync.require_admin_or_hide((select account_id from keapsync.change_history where id = p_history_id),
                                         format('change %s', p_history_id));
  select * into strict h from keapsync.change_history where id = p_history_id for update;
  if h.rolled_back_by is not null then
    raise exception 'keapsync: change % was already rolled back by %', p_history_id, h.rolled_back_by
      using errcode = '55000';
  end if;
  perform keapsync.set_origin('rollback');

  if h.table_name = 'contact_tags' then
    if h.op = 'insert' then
      delete from keap.contact_tags where account_id = h.account_id
                                      and contact_id = (h.changed ->> 'contact_id')::bigint
                                      and tag_id = (h.changed ->> 'tag_id')::bigint;
    elsif h.op = 'delete' then
      insert into keap.contact_tags (account_id, contact_id, tag_id, date_applied)
      select h.account_id, c.id, tg.id, now() from keap.contacts c, keap.tags tg
       where c.id = (h.old_row ->> 'contact_id')::bigint and c.account_id = h.account_id
         and tg.id = (h.old_row ->> 'tag_id')::bigint and tg.account_id = h.account_id
      on conflict do nothing;
    end if;
  else
    select * into strict t from keapsync.object_types where table_name = h.table_name;
    if h.op = 'insert' then
      execute format('delete from keap.%I where id = $1 and account_id = $2', t.table_name) using h.row_id, h.account_id;
    elsif h.op = 'update' then
      -- Only data a person can change goes back; Keap-owned columns follow Keap.
      for k in select key from jsonb_object_keys(h.changed) key loop
        if k = any (t.merge_columns) or k = t.map_column then
          restore := restore || jsonb_build_object(k, h.changed -> k -> 'old');
        end if;
      end loop;
      if restore = '{}' then
        raise exception 'keapsync: change % touched only Keap-owned columns; nothing to roll back', p_history_id
          using errcode = '55000';
      end if;
      select string_agg(format('%I', key), ', ') into cols from jsonb_object_keys(restore) key;
      execute format('update keap.%I set (%s) = (select %s from jsonb_populate_record(null::keap.%I, $1)) where id = $2 and account_id = $3',
                     t.table_name, cols, cols, t.table_name)
        using restore, h.row_id, h.account_id;
    else
      -- Bring a deleted row back as a new local record: if Keap deleted it, it is created again.
      restore := (h.old_row - array['keap_id', 'sync_origin', 'version', 'updated_at', 'created_at', 'keap_object'])
                 || jsonb_build_object('account_id', h.account_id,
                                       'keap_id', (select s.keap_id from keapsync.sync_state s
                                                    where s.account_id = h.account_id and s.object_type = t.object_type
                                                      and s.local_id = h.row_id and s.local_deleted_at is not null));
      select string_agg(format('%I', key), ', ') into cols from jsonb_object_keys(restore) key;
      delete from keapsync.sync_state where account_id = h.account_id and object_type = t.object_type
                                         and local_id = h.row_id;
      execute format('insert into keap.%I (%s) select %s from jsonb_populate_record(null::keap.%I, $1)',
                     t.table_name, cols, cols, t.table_name)
        using restore;
      if restore ->> 'keap_id' is not null then
        -- The delete had not reached Keap: the record is synced again as it was.
        update keapsync.sync_state s set agreed = keapsync.row_doc(h.account_id, t.object_type, h.row_id)
         where s.account_id = h.account_id and s.object_type = t.object_type and s.local_id = h.row_id;
      end if;
    end if;
  end if;

  select max(id) into new_id from keapsync.change_history
   where txid = txid_current() and id > p_history_id and account_id = h.account_id;
  update keapsync.change_history set rolled_back_by = new_id where id = p_history_id;
  return new_id;
end;
$$;

-- As in 20261127080300_resolve_and_rollback.sql: another account's dead letter does not exist
-- for the caller.
create or replace function keapsync.set_dead_letter(p_id bigint, p_status text) returns keapsync.dead_letters
language plpgsql volatile security definer set search_path = ''
as $$
declare
  d keapsync.dead_letters;
begin
  perform keapsync.require_admin_or_hide((select account_id from keapsync.dead_letters where id = p_id),
                                         format('dead letter %s', p_id));
  select * into strict d from keapsync.dead_letters where id = p_id for update;
  if p_status = 'retry' and d.status not in ('parked', 'retry') then
    raise exception 'keapsync: dead letter % is %', p_id, d.status using errcode = '55000';
  end if;
  update keapsync.dead_letters
     set status = p_status, retry_requested_by = auth.uid(),
         retry_requested_at = case when p_status = 'retry' then now() else retry_requested_at end
   where id = p_id returning * into d;
  return d;
end;
$$;

revoke execute on function keapsync.owns_row(uuid, text, bigint),
  keapsync.row_doc(uuid, text, bigint), keapsync.require_admin_or_hide(uuid, text) from public;
grant execute on function keapsync.owns_row(uuid, text, bigint), keapsync.row_doc(uuid, text, bigint),
  keapsync.require_admin_or_hide(uuid, text) to service_role;
