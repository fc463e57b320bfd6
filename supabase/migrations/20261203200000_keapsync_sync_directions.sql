-- Which way each object type syncs, per account: 'both' (the default), 'keap_to_postgres' (Keap's
-- changes arrive, nothing here is sent to Keap) or 'off' (keapsync neither reads nor writes the
-- type: no backfill, reconcile or hook subscription). Every account has a row per object type, so
-- changing it is one update:
--   update keapsync.sync_directions set direction = 'keap_to_postgres'
--    where account_id = '…' and object_type = 'order';
-- Each change is recorded in keapsync.change_history (table_name 'sync_directions').
--
-- A local write to a type that does not sync both ways is rejected (SQLSTATE 25006,
-- read_only_sql_transaction) with the reason and the update that allows it: a rejected write
-- tells the person at once, where a change accepted and never sent would silently diverge.
-- Writes made on behalf of Keap pass.

create table keapsync.sync_directions (
  id bigint generated always as identity unique,
  account_id uuid not null references keapsync.accounts (id) on delete cascade,
  object_type text not null references keapsync.object_types (object_type) on delete cascade,
  direction text not null default 'both' check (direction in ('off', 'keap_to_postgres', 'both')),
  updated_at timestamptz not null default now(),
  primary key (account_id, object_type)
);

insert into keapsync.sync_directions (account_id, object_type)
select a.id, t.object_type from keapsync.accounts a cross join keapsync.object_types t;

-- New accounts and new object types get their rows ('both').
create or replace function keapsync.tg_sync_directions_fill() returns trigger
language plpgsql security definer set search_path = ''
as $$
begin
  if tg_table_name = 'accounts' then
    insert into keapsync.sync_directions (account_id, object_type)
    select n.id, t.object_type from new_rows n cross join keapsync.object_types t
    on conflict do nothing;
  else
    insert into keapsync.sync_directions (account_id, object_type)
    select a.id, n.object_type from keapsync.accounts a cross join new_rows n
    on conflict do nothing;
  end if;
  return null;
end;
$$;
revoke execute on function keapsync.tg_sync_directions_fill() from public;
create trigger sync_directions_fill after insert on keapsync.accounts referencing new table as new_rows
  for each statement execute function keapsync.tg_sync_directions_fill();
create trigger sync_directions_fill after insert on keapsync.object_types referencing new table as new_rows
  for each statement execute function keapsync.tg_sync_directions_fill();

-- The audit: every change of direction, with who made it.
create or replace function keapsync.tg_sync_directions_audit() returns trigger
language plpgsql security definer set search_path = ''
as $$
begin
  if tg_op = 'UPDATE' then
    new.updated_at := now();
    if new.direction is not distinct from old.direction and new.object_type = old.object_type
       and new.account_id = old.account_id then
      return new;
    end if;
  end if;
  if tg_op = 'INSERT' and new.direction = 'both' then
    return new; -- the default every account and type starts with
  end if;
  insert into keapsync.change_history (account_id, table_name, row_id, op, origin, changed, old_row, new_row, actor)
  values (coalesce(new.account_id, old.account_id), 'sync_directions', coalesce(new.id, old.id), lower(tg_op), 'local',
          jsonb_build_object('direction', jsonb_build_object('old', old.direction, 'new', new.direction)),
          case when tg_op <> 'INSERT' then to_jsonb(old) end, case when tg_op <> 'DELETE' then to_jsonb(new) end,
          auth.uid());
  return coalesce(new, old);
end;
$$;
revoke execute on function keapsync.tg_sync_directions_audit() from public;
create trigger sync_directions_audit before insert or update or delete on keapsync.sync_directions
  for each row execute function keapsync.tg_sync_directions_audit();

-- The guard on the synced tables. The WHEN clause keeps Keap's own writes (backfill, hooks) off
-- the function entirely; a local write costs one primary-key lookup.
create or replace function keapsync.tg_guard_direction() returns trigger
language plpgsql security definer set search_path = ''
as $$
declare
  r record := coalesce(new, old);
  d text;
begin
  select s.direction into d from keapsync.sync_directions s
   where s.account_id = r.account_id and s.object_type = tg_argv[0];
  if coalesce(d, 'both') <> 'both' then
    raise exception 'keap.% of account % syncs %: a change made here would never reach Keap, so it is refused',
                    tg_table_name, r.account_id,
                    case d when 'off' then 'not at all (off)' else 'from Keap to Postgres only' end
      using errcode = 'read_only_sql_transaction',
            hint = format('Change it in Keap, or let %s sync both ways: update keapsync.sync_directions set direction = ''both'' where account_id = %L and object_type = %L',
                          tg_argv[0], r.account_id, tg_argv[0]);
  end if;
  return r;
end;
$$;
revoke execute on function keapsync.tg_guard_direction() from public;

-- keapsync.guard_direction(table, object_type) puts the guard on a synced table; a migration that
-- adds an object type calls it for the type's table (and its part tables).
create or replace function keapsync.guard_direction(p_table text, p_type text) returns void
language plpgsql set search_path = ''
as $$
begin
  execute format('drop trigger if exists guard_direction on keap.%I', p_table);
  execute format('create trigger guard_direction before insert or update or delete on keap.%I for each row
                    when (pg_catalog.current_setting(''keapsync.origin'', true) is distinct from ''keap'')
                    execute function keapsync.tg_guard_direction(%L)', p_table, p_type);
end;
$$;
revoke execute on function keapsync.guard_direction(text, text) from public;

select keapsync.guard_direction(table_name, object_type) from keapsync.object_types;
select keapsync.guard_direction('contact_tags', 'contact');

alter table keapsync.sync_directions enable row level security;
create policy members_read on keapsync.sync_directions for select to authenticated
  using (account_id = any ((select keapsync.my_accounts())::uuid[]));
create policy admins_insert on keapsync.sync_directions for insert to authenticated
  with check (account_id = any ((select keapsync.my_admin_accounts())::uuid[]));
create policy admins_update on keapsync.sync_directions for update to authenticated
  using (account_id = any ((select keapsync.my_admin_accounts())::uuid[]))
  with check (account_id = any ((select keapsync.my_admin_accounts())::uuid[]));
create policy admins_delete on keapsync.sync_directions for delete to authenticated
  using (account_id = any ((select keapsync.my_admin_accounts())::uuid[]));
grant select, insert, update, delete on keapsync.sync_directions to authenticated;
grant select, insert, update, delete on keapsync.sync_directions to service_role;
select keapsync.grant_sidecar_rls();
