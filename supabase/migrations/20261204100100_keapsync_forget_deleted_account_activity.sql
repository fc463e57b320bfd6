-- Deleting an account left its sync activity behind. keapsync.sync_activity has no foreign key
-- to accounts because its writers run inside that very delete: the cascade's deletes write
-- history and drop sync state, whose triggers count activity after the account row is gone (a
-- key would fail the delete). Found by supabase/tests/account_delete.test.sql, which checks
-- every table with an account_id.
--
-- Now the account's delete drops its activity, and the writers count nothing for an account
-- that no longer exists: the cascade's triggers fire after the delete's own statement trigger,
-- so without the second half they would write the rows again.

create or replace function keapsync.tg_sync_activity_in() returns trigger
language plpgsql security definer set search_path = ''
as $$
begin
  insert into keapsync.sync_activity (account_id, hour, direction, changes, last_at)
  select r.account_id, date_trunc('hour', r.at, 'UTC'), 'in', count(*), max(r.at)
    from new_rows r
   where r.origin = 'keap'
     and not (r.op = 'update' and r.changed - '{last_updated,modification_date}'::text[] = '{}'::jsonb)
   group by 1, 2
  having exists (select 1 from keapsync.accounts a where a.id = r.account_id);  -- once per bucket, not per row
  if found and random() < 0.05 then
    perform keapsync.compact_sync_activity();
  end if;
  return null;
end;
$$;

create or replace function keapsync.tg_sync_activity_out() returns trigger
language plpgsql security definer set search_path = ''
as $$
declare
  v_at timestamptz := now();
begin
  if tg_op = 'UPDATE' then
    v_at := coalesce(new.last_pushed_at, v_at);
  end if;
  insert into keapsync.sync_activity (account_id, hour, direction, changes, last_at)
  select old.account_id, date_trunc('hour', v_at, 'UTC'), 'out', 1, v_at
   where exists (select 1 from keapsync.accounts a where a.id = old.account_id);
  if found and random() < 0.05 then
    perform keapsync.compact_sync_activity();
  end if;
  return null;
end;
$$;

create function keapsync.tg_forget_account_activity() returns trigger
language plpgsql security definer set search_path = ''
as $$
begin
  delete from keapsync.sync_activity s using gone g where s.account_id = g.id;
  return null;
end;
$$;
revoke execute on function keapsync.tg_forget_account_activity() from public;

create trigger forget_activity after delete on keapsync.accounts
  referencing old table as gone for each statement execute function keapsync.tg_forget_account_activity();
