-- A sweep's page (up to 1,000 records of a reconcile or a backfill resumed) is first compared
-- with what is stored, and only the records that differ are applied. The comparison read each
-- stored object through keapsync.keap_object_of, a dynamic query planned anew for every record:
-- 76-124 ms a page in the ingest tests' sweeps (pg_stat_statements), 8 s of the package's
-- database time. It is now one query a page, 2.4-3.4 ms for the same pages (issue #16: the
-- suite's CPU, and a reconcile's cost per record). Which records count as unchanged is as before: the page's
-- records that have a sync state and whose stored Keap object, payments and v2's custom fields
-- aside, is exactly the record's JSON.

-- The ids of p_ids (with their records' JSON text in p_raws, in the same order) whose stored Keap
-- object is that JSON, payments and custom fields aside. Text, not jsonb: a record PostgreSQL
-- cannot read (a NUL escape) fails the comparison here, and the caller then applies the page
-- whole, where that record alone is parked.
create function keapsync.unchanged_keap_ids(p_account uuid, p_type text, p_ids bigint[], p_raws text[])
returns setof bigint
language plpgsql stable set search_path = ''
as $$
begin
  return query execute format($q$
    select x.id from unnest($3, $4) x(id, raw)
      join keapsync.sync_state s on s.account_id = $1 and s.object_type = $2 and s.keap_id = x.id
      join keap.%I r on r.id = s.local_id
     where r.keap_object - 'payments' - 'custom_fields' = x.raw::jsonb$q$,
    (select table_name from keapsync.object_types where object_type = p_type))
    using p_account, p_type, p_ids, p_raws;
end;
$$;
revoke execute on function keapsync.unchanged_keap_ids(uuid, text, bigint[], text[]) from public;
grant execute on function keapsync.unchanged_keap_ids(uuid, text, bigint[], text[]) to keapsync_sidecar, service_role;
