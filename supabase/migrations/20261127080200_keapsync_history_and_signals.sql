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

-- After a statement on a synced table: record its history and keep sync_state in step with local
-- edits. Statement-level with transition tables, so a backfill page or a bulk UPDATE costs a few
-- set-based statements instead of several queries per row. History holds, per record, the
-- changed columns as {column: {old, new}} for updates, and the row's data for inserts and deletes.
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

do $triggers$
declare
  t text;
begin
  foreach t in array array['contacts', 'tag_categories', 'tags', 'contact_tags', 'orders', 'subscriptions'] loop
    execute format('create trigger stamp_row before insert or update on keap.%I
                    for each row execute function keapsync.tg_stamp_row()', t);
    execute format('create trigger track_insert after insert on keap.%I referencing new table as new_rows
                    for each statement execute function keapsync.tg_track_change()', t);
    execute format('create trigger track_update after update on keap.%I referencing old table as old_rows new table as new_rows
                    for each statement execute function keapsync.tg_track_change()', t);
    execute format('create trigger track_delete after delete on keap.%I referencing old table as old_rows
                    for each statement execute function keapsync.tg_track_change()', t);
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
