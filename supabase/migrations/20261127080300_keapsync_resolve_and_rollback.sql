-- What a person does about sync: resolve a conflict, roll back a change, retry or discard a dead
-- letter. The dashboard, the CLI and plain SQL all call these; only admins of the account may.

-- Resolve an open conflict: p_choice is 'keap' (take Keap's value), 'local' (keep ours, push it)
-- or 'value' (p_value, pushed). Returns the resolved conflict.
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
  select * into c from keapsync.conflicts where id = p_conflict_id for update;
  if not found then
    raise exception 'keapsync: no conflict %', p_conflict_id using errcode = 'P0002';
  end if;
  perform keapsync.require_admin(c.account_id);
  if c.status <> 'open' then
    raise exception 'keapsync: conflict % is already %', p_conflict_id, c.status using errcode = '55000';
  end if;
  if p_choice not in ('keap', 'local', 'value') then
    raise exception 'keapsync: resolve with keap, local or value, not %', p_choice using errcode = '22023';
  end if;
  v := case p_choice when 'keap' then c.keap_value when 'local' then c.local_value else p_value end;

  -- The local row before its sync state, the order a local edit takes them in.
  execute format('select 1 from keap.%I where id = $1 for update',
                 (select table_name from keapsync.object_types where object_type = c.object_type)) using c.local_id;
  select * into strict st from keapsync.sync_state
   where account_id = c.account_id and object_type = c.object_type and local_id = c.local_id for update;
  ldoc := keapsync.row_doc(c.object_type, c.local_id);
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

-- Resolve every open conflict of an account (optionally one object type) by a policy:
-- 'keap_wins', 'local_wins' or 'newest_wins'. Returns how many were resolved.
create or replace function keapsync.resolve_conflicts_by_policy(p_account uuid, p_policy text, p_type text default null)
returns integer
language plpgsql volatile security definer set search_path = ''
as $$
declare
  c keapsync.conflicts;
  n integer := 0;
  local_at timestamptz;
begin
  perform keapsync.require_admin(p_account);
  if p_policy not in ('keap_wins', 'local_wins', 'newest_wins') then
    raise exception 'keapsync: bulk resolve with keap_wins, local_wins or newest_wins, not %', p_policy
      using errcode = '22023';
  end if;
  for c in select * from keapsync.conflicts
            where account_id = p_account and status = 'open' and (p_type is null or object_type = p_type)
            order by id loop
    if p_policy = 'newest_wins' then
      select (s.local_changed_at ->> c.field)::timestamptz into local_at from keapsync.sync_state s
       where s.account_id = c.account_id and s.object_type = c.object_type and s.local_id = c.local_id;
    end if;
    perform keapsync.resolve_conflict(c.id,
      case when p_policy = 'keap_wins' then 'keap'
           when p_policy = 'local_wins' then 'local'
           when local_at is not null and (c.keap_modified is null or local_at > c.keap_modified) then 'local'
           else 'keap' end);
    n := n + 1;
  end loop;
  return n;
end;
$$;

-- Roll back one recorded change. The rollback is an ordinary local change (origin 'rollback'),
-- so it is pushed to Keap like any edit. Returns the history id the rollback itself produced.
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
  select * into h from keapsync.change_history where id = p_history_id for update;
  if not found then
    raise exception 'keapsync: no change %', p_history_id using errcode = 'P0002';
  end if;
  perform keapsync.require_admin(h.account_id);
  if h.rolled_back_by is not null then
    raise exception 'keapsync: change % was already rolled back by %', p_history_id, h.rolled_back_by
      using errcode = '55000';
  end if;
  perform keapsync.set_origin('rollback');

  if h.table_name = 'contact_tags' then
    if h.op = 'insert' then
      delete from keap.contact_tags where contact_id = (h.changed ->> 'contact_id')::bigint
                                      and tag_id = (h.changed ->> 'tag_id')::bigint;
    elsif h.op = 'delete' then
      insert into keap.contact_tags (account_id, contact_id, tag_id, date_applied)
      select h.account_id, c.id, tg.id, now() from keap.contacts c, keap.tags tg
       where c.id = (h.old_row ->> 'contact_id')::bigint and tg.id = (h.old_row ->> 'tag_id')::bigint
      on conflict do nothing;
    end if;
  else
    select * into strict t from keapsync.object_types where table_name = h.table_name;
    if h.op = 'insert' then
      execute format('delete from keap.%I where id = $1', t.table_name) using h.row_id;
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
      execute format('update keap.%I set (%s) = (select %s from jsonb_populate_record(null::keap.%I, $1)) where id = $2',
                     t.table_name, cols, cols, t.table_name)
        using restore, h.row_id;
    else
      -- Bring a deleted row back as a new local record: if Keap deleted it, it is created again.
      restore := (h.old_row - array['keap_id', 'sync_origin', 'version', 'updated_at', 'created_at', 'keap_object'])
                 || jsonb_build_object('keap_id', (select s.keap_id from keapsync.sync_state s
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
        update keapsync.sync_state s set agreed = keapsync.row_doc(t.object_type, h.row_id)
         where s.account_id = h.account_id and s.object_type = t.object_type and s.local_id = h.row_id;
      end if;
    end if;
  end if;

  select max(id) into new_id from keapsync.change_history
   where txid = txid_current() and id > p_history_id;
  update keapsync.change_history set rolled_back_by = new_id where id = p_history_id;
  return new_id;
end;
$$;

-- Retry or discard a parked failure: p_status 'retry' (the sidecar picks it up again) or
-- 'discarded'. Only a parked (or already retrying) dead letter can be retried.
create or replace function keapsync.set_dead_letter(p_id bigint, p_status text) returns keapsync.dead_letters
language plpgsql volatile security definer set search_path = ''
as $$
declare
  d keapsync.dead_letters;
begin
  select * into d from keapsync.dead_letters where id = p_id for update;
  if not found then
    raise exception 'keapsync: no dead letter %', p_id using errcode = 'P0002';
  end if;
  perform keapsync.require_admin(d.account_id);
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

create or replace function keapsync.retry_dead_letter(p_id bigint) returns keapsync.dead_letters
language sql volatile security definer set search_path = ''
as $$ select keapsync.set_dead_letter(p_id, 'retry'); $$;

create or replace function keapsync.discard_dead_letter(p_id bigint) returns keapsync.dead_letters
language sql volatile security definer set search_path = ''
as $$ select keapsync.set_dead_letter(p_id, 'discarded'); $$;
