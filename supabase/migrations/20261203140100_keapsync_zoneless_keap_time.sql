-- Keap timestamps without a zone are UTC (issue 13). Keap documents its timestamps as ISO-8601
-- with a zone (`2017-01-01T22:17:59.039Z`); some fields and older endpoints come without one,
-- and a cast to timestamptz would read those in the session's TimeZone, so the same Keap version
-- would order differently by who applied it. The rule, also in Go (keap.ParseTime): a string
-- with `Z` or an offset means what it says; a date-time or date without one is UTC.
-- Plain SQL without SET clauses, so it still inlines into the set-based apply.
create or replace function keapsync.keap_time(p text) returns timestamptz
language sql stable
as $$
  select case
    when nullif(pg_catalog.btrim(p), '') is null then null
    when pg_catalog.btrim(p) ~ '^\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d+)?)?\s*([Zz]|[+-]\d\d(:?\d\d)?)$'
      then pg_catalog.btrim(p)::pg_catalog.timestamptz
    else pg_catalog.timezone('UTC', pg_catalog.btrim(p)::pg_catalog.timestamp)
  end;
$$;
-- create or replace keeps the grants the function already had.
