-- Triggers: stamp rows with their origin and version, keep the change history and the per-record
-- sync bookkeeping (local edits, local creates and deletes), and signal dashboards.

-- Before a synced row is written: stamp origin, updated_at and version.
create or replace function keapsync.tg_stamp_row() returns trigger
language plpgsql set search_path = ''
as $$
begin
  -- keapsync.current_origin(), inlined: this runs for every row written.
  new.sync_origin := case when current_setting('keapsync.origin', true) = 'keap' then 'keap' else 'local' end;
  if tg_table_name <> 'contact_tags' then
    new.updated_at := now();
    if tg_op = 'UPDATE' then
      new.version := old.version + 1;
    end if;
  end if;
  return new;
end;
$$;

-- After a synced row is written: record history and keep sync_state in step with local edits.
create or replace function keapsync.tg_track_change() returns trigger
language plpgsql security definer set search_path = ''
as $$
declare
  origin text := keapsync.current_origin();
  -- Bookkeeping columns, not data: left out of history.
  ignored constant text[] := array['updated_at', 'version', 'sync_origin', 'keap_object', 'created_at'];
  o jsonb := case when tg_op <> 'INSERT' then to_jsonb(old) end;
  n jsonb := case when tg_op <> 'DELETE' then to_jsonb(new) end;
  r jsonb := coalesce(n, o);
  changed jsonb;
  v_type text;
  v_row bigint;
  v_account uuid := (r ->> 'account_id')::uuid;
  keys text[];
  propagate boolean;
begin
  -- Updates record {column: {old, new}} for the columns that changed; inserts and deletes record
  -- the row's data (cheap: no per-column loop on the bulk path of a backfill).
  if tg_op = 'UPDATE' then
    select coalesce(jsonb_object_agg(k, jsonb_build_object('old', o -> k, 'new', n -> k)), '{}')
      into changed
      from jsonb_object_keys(n) k
     where not (k = any (ignored)) and (o -> k) is distinct from (n -> k);
    if changed = '{}' then
      return null;
    end if;
  else
    changed := jsonb_strip_nulls(r) - ignored;
  end if;

  if tg_table_name = 'contact_tags' then
    v_type := 'contact';
    v_row := (r ->> 'contact_id')::bigint;
  else
    select object_type into v_type from keapsync.object_types where table_name = tg_table_name;
    v_row := (r ->> 'id')::bigint;
  end if;

  insert into keapsync.change_history (account_id, table_name, row_id, keap_id, op, origin, changed,
                                       old_row, new_row, actor)
  values (v_account, tg_table_name, v_row,
          case when tg_table_name = 'contact_tags'
               then (select c.keap_id from keap.contacts c where c.id = v_row)
               else (r ->> 'keap_id')::bigint end,
          -- An insert's data is in `changed` already; storing the row again would double a backfill.
          lower(tg_op), origin, changed, o, case when tg_op = 'UPDATE' then n end, auth.uid());

  if origin = 'keap' then
    return null;
  end if;

  -- A local change. Remember when each field changed (newest_wins compares it with Keap's clock).
  if tg_table_name = 'contact_tags' then
    keys := array(select 'tag.' || tg.keap_id from keap.tags tg
                   where tg.id = (r ->> 'tag_id')::bigint and tg.keap_id is not null);
  else
    keys := array(select k from jsonb_object_keys(changed) k where k <> 'custom_fields')
         || array(select 'custom_fields.' || e.key
                    from jsonb_each(coalesce(n -> 'custom_fields', '{}') || coalesce(o -> 'custom_fields', '{}')) e
                   where (n -> 'custom_fields' -> e.key) is distinct from (o -> 'custom_fields' -> e.key));
  end if;

  if tg_op = 'INSERT' and tg_table_name <> 'contact_tags' then
    insert into keapsync.sync_state (account_id, object_type, local_id, keap_id, local_changed_at)
    values (v_account, v_type, v_row, (r ->> 'keap_id')::bigint,
            (select coalesce(jsonb_object_agg(k, now()), '{}') from unnest(keys) k))
    on conflict (account_id, object_type, local_id) do nothing;
  elsif tg_op = 'DELETE' and tg_table_name <> 'contact_tags' then
    select s.propagate_deletes into propagate from keapsync.settings s where s.account_id = v_account;
    if coalesce(propagate, false) and (r ->> 'keap_id') is not null then
      update keapsync.sync_state set local_deleted_at = now()
       where account_id = v_account and object_type = v_type and local_id = v_row;
    else
      -- Not propagated: the record is simply no longer synced here.
      delete from keapsync.sync_state
       where account_id = v_account and object_type = v_type and local_id = v_row;
    end if;
  elsif cardinality(keys) > 0 then
    update keapsync.sync_state
       set local_changed_at = local_changed_at || (select jsonb_object_agg(k, now()) from unnest(keys) k)
     where account_id = v_account and object_type = v_type and local_id = v_row;
  end if;
  return null;
end;
$$;

do $triggers$
declare
  t text;
begin
  foreach t in array array['contacts', 'tag_categories', 'tags', 'contact_tags', 'orders', 'subscriptions'] loop
    execute format('create trigger stamp_row before insert or update on keap.%I
                    for each row execute function keapsync.tg_stamp_row()', t);
    execute format('create trigger track_change after insert or update or delete on keap.%I
                    for each row execute function keapsync.tg_track_change()', t);
  end loop;
end
$triggers$;

-- ---------------------------------------------------------------------------------------------
-- Signals for live dashboards: a private Supabase Realtime broadcast on topic
-- `keapsync:<account id>` (authorised by RLS on realtime.messages), and the same payload through
-- pg_notify on channel `keapsync` for setups without a Realtime server.
-- ---------------------------------------------------------------------------------------------
create or replace function keapsync.signal(p_account uuid, p_kind text, p_payload jsonb) returns void
language plpgsql security definer set search_path = ''
as $$
declare
  msg jsonb := jsonb_build_object('account_id', p_account, 'kind', p_kind) || coalesce(p_payload, '{}');
begin
  perform realtime.send(msg, p_kind, 'keapsync:' || p_account::text, true);
  perform pg_notify('keapsync', msg::text);
end;
$$;

-- Status rows: one signal per row change, carrying only ids and states (never secrets or data).
create or replace function keapsync.tg_signal_status() returns trigger
language plpgsql security definer set search_path = ''
as $$
declare
  r jsonb := to_jsonb(coalesce(new, old));
begin
  perform keapsync.signal(
    coalesce((r ->> 'account_id')::uuid, (r ->> 'id')::uuid),
    tg_table_name,
    jsonb_build_object('op', lower(tg_op), 'id', r -> 'id', 'status', r -> 'status'));
  return null;
end;
$$;

do $triggers$
declare
  t text;
begin
  foreach t in array array['accounts', 'conflicts', 'dead_letters', 'hook_subscriptions', 'sync_cursors', 'oauth_tokens'] loop
    execute format('create trigger signal_status after insert or update or delete on keapsync.%I
                    for each row execute function keapsync.tg_signal_status()', t);
  end loop;
end
$triggers$;

-- Data tables: one signal per statement and account, so a bulk load does not flood listeners.
create or replace function keapsync.tg_signal_data() returns trigger
language plpgsql security definer set search_path = ''
as $$
declare
  a uuid;
begin
  for a in select distinct account_id from changed_rows loop
    perform keapsync.signal(a, 'data', jsonb_build_object('table', tg_table_name, 'op', lower(tg_op)));
  end loop;
  return null;
end;
$$;

do $triggers$
declare
  t text;
  op text;
begin
  foreach t in array array['contacts', 'contact_tags', 'orders', 'subscriptions'] loop
    foreach op in array array['insert', 'update', 'delete'] loop
      execute format('create trigger signal_data_%s after %s on keap.%I referencing %s table as changed_rows
                      for each statement execute function keapsync.tg_signal_data()',
                     op, op, t, case op when 'delete' then 'old' else 'new' end);
    end loop;
  end loop;
end
$triggers$;
