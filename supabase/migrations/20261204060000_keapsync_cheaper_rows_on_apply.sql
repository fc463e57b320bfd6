-- Cheaper per-row work when a backfill's page is applied (issue #18). What is stored is
-- unchanged (supabase/tests/page_apply.test.sql, custom_fields_everywhere.test.sql).
--
-- A function with a SET clause saves, sets and restores that setting on every call, and a
-- changed search_path makes the caller re-check its cached plans: for a function run once per
-- row (a row trigger, a helper of the insert), that was a good part of the row's cost. These run
-- without it, as keap_columns_of, keap_modified and merge_doc already do: their bodies name
-- nothing but pg_catalog functions and operators, all qualified, and none is security definer
-- (a caller's search_path cannot lend it more than the caller's own rights).
--
-- 1. tg_stamp_row, on every row of every synced table.
-- 2. keap_custom_columns and tag_doc, on every record applied: walked with plain expressions
--    instead of a query over jsonb_array_elements, which started an executor per call.

create or replace function keapsync.tg_stamp_row() returns trigger
language plpgsql
as $$
begin
  -- keapsync.current_origin(), inlined: this runs for every row written.
  new.sync_origin := case when pg_catalog.current_setting('keapsync.origin', true) = 'keap' then 'keap' else 'local' end;
  if tg_table_name <> 'contact_tags' then
    new.updated_at := pg_catalog.now();
    if tg_op = 'UPDATE' then
      new.version := old.version + 1;
    end if;
  end if;
  return new;
end;
$$;

-- A Keap object's custom_fields list as the column p_column holding the values by id; entries
-- without an id or with null content are left out, a later entry of an id wins (as
-- jsonb_object_agg had it). Nothing when there is no list or no column.
create or replace function keapsync.keap_custom_columns(p_column text, p_raw jsonb) returns jsonb
language plpgsql immutable
as $$
declare
  fields jsonb := p_raw -> 'custom_fields';
  x jsonb;
  cf jsonb := '{}';
begin
  if p_column is null or pg_catalog.jsonb_typeof(fields) is distinct from 'array' then
    return '{}';
  end if;
  for i in 0 .. pg_catalog.jsonb_array_length(fields) - 1 loop
    x := fields -> i;
    if x ->> 'id' is not null and pg_catalog.jsonb_typeof(x -> 'content') <> 'null' then
      cf := cf || pg_catalog.jsonb_build_object(x ->> 'id', x -> 'content');
    end if;
  end loop;
  return pg_catalog.jsonb_build_object(p_column, cf);
end;
$$;

-- The tag links of a Keap contact as merge-doc keys (tag.<id>: true).
create or replace function keapsync.tag_doc(p_raw jsonb) returns jsonb
language plpgsql immutable
as $$
declare
  tags jsonb := p_raw -> 'tag_ids';
  doc jsonb := '{}';
begin
  if pg_catalog.jsonb_typeof(tags) is distinct from 'array' then
    return doc;
  end if;
  for i in 0 .. pg_catalog.jsonb_array_length(tags) - 1 loop
    doc := doc || pg_catalog.jsonb_build_object('tag.' || (tags -> i #>> '{}'), true);
  end loop;
  return doc;
end;
$$;
