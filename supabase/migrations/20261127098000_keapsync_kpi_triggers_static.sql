-- KPI summary triggers with static SQL. The triggers of 20261127095000_kpi_summaries.sql built
-- their statement with format() and ran it with EXECUTE, so PostgreSQL parsed and planned it on
-- every call: cheap for a backfill page (one call per thousand rows, ~1.5% of the apply), but a
-- record applied on its own (a hook's fetch, a reconcile merging known records one by one) fires
-- them per statement, and there planning was most of their cost: 29% of apply time for 20,000
-- single-record updates (pg_stat_user_functions).
--
-- Now each source table has one function per operation, generated below from the same SQL
-- (keapsync.kpi_summaries(), untouched) with that operation's transition tables in place. Their
-- statement is static, so PL/pgSQL plans it once per session, and a statement that wrote no row
-- returns at once. Truncate stays in keapsync.tg_kpi_summary(), cut down to that (it runs rarely
-- and names its summary). Same 20,000 updates: 9% when every record moves week and tags, 2-4%
-- when they do not; a backfill page of new records is unchanged (~1.5%).

create or replace function keapsync.tg_kpi_summary() returns trigger
language plpgsql security definer set search_path = ''
as $$
begin
  execute format('delete from keapsync.%I',
                 (select k.summary from keapsync.kpi_summaries() k where k.source = tg_table_name));
  return null;
end;
$$;

-- The functions and triggers are made from constants only: the summaries' SQL and the three
-- ways a statement's rows are signed.
do $triggers$
declare
  s record;
  op record;
  fn text;
begin
  for s in select * from keapsync.kpi_summaries() loop
    for op in select * from (values
        ('insert', 'referencing new table as new_rows', 'new_rows', 'select *, 1 as sign from new_rows'),
        ('update', 'referencing old table as old_rows new table as new_rows', 'new_rows',
                   'select *, 1 as sign from new_rows union all select *, -1 as sign from old_rows'),
        ('delete', 'referencing old table as old_rows', 'old_rows', 'select *, -1 as sign from old_rows'))
        o(name, transition, rows, signed) loop
      fn := format('tg_kpi_%s_%s', s.source, op.name);
      execute format($f$create or replace function keapsync.%I() returns trigger
language plpgsql security definer set search_path = ''
as $body$
begin
  perform from %s limit 1;
  if not found then  -- a statement that wrote no row (the sync often deletes nothing)
    return null;
  end if;
%s;
  return null;
end;
$body$$f$, fn, op.rows, format(s.add_sql, op.signed));
      execute format('drop trigger kpi_%s on keap.%I', op.name, s.source);
      execute format('create trigger kpi_%s after %s on keap.%I %s for each statement execute function keapsync.%I()',
                     op.name, op.name, s.source, op.transition, fn);
      execute format('alter table keap.%I enable always trigger kpi_%s', s.source, op.name);
    end loop;
  end loop;
end
$triggers$;
