-- Least-privilege roles for keapsync's own connections, so neither needs `postgres`:
--   keapsync_sidecar    LOGIN REPLICATION NOINHERIT: what `keapsync serve`, backfill, reconcile, auth
--                       and hooks use: the keap and keapsync tables and keapsync's functions, the
--                       push slot (REPLICATION) and nothing else: no other schema, no DDL, no
--                       ownership. It may become authenticated (for the dashboard inside serve)
--                       but inherits nothing from it.
--   keapsync_dashboard  LOGIN NOINHERIT, member of authenticated: it holds no rights itself; every
--                       dashboard query runs after `set_config('role', 'authenticated', true)` with
--                       the signed-in person's claims, so RLS decides what it reads.
-- Both are created without a password: the operator sets one (`alter role ... password '...'`).
-- The push publication is created here, by the owner of the tables (publishing a table takes
-- ownership); the sidecar's REPLICATION is enough to create and use the slot.
do $$
begin
  if not exists (select 1 from pg_roles where rolname = 'keapsync_sidecar') then
    create role keapsync_sidecar login replication noinherit;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'keapsync_dashboard') then
    create role keapsync_dashboard login noinherit;
  end if;
end
$$;
comment on role keapsync_sidecar is 'keapsync serve and its commands: keap.* and keapsync.* data, keapsync functions, the push slot. Set its password.';
comment on role keapsync_dashboard is 'The keapsync dashboard''s connection: becomes authenticated per request (RLS applies). Set its password.';

grant authenticated to keapsync_dashboard, keapsync_sidecar;

grant usage on schema keap, keapsync to keapsync_sidecar;
grant select, insert, update, delete on all tables in schema keap, keapsync to keapsync_sidecar;
grant usage, select on all sequences in schema keap, keapsync to keapsync_sidecar;
grant execute on all functions in schema keapsync to keapsync_sidecar;
alter default privileges in schema keap, keapsync grant select, insert, update, delete on tables to keapsync_sidecar;
alter default privileges in schema keap, keapsync grant usage, select on sequences to keapsync_sidecar;
alter default privileges in schema keapsync grant execute on functions to keapsync_sidecar;

-- keapsync.grant_sidecar_rls() lets keapsync_sidecar through RLS on every keap and keapsync
-- table that has it (the sidecar works for every account; it is not a person). A migration that
-- adds such a table calls it again; `keapsync doctor` names a table it missed.
create or replace function keapsync.grant_sidecar_rls() returns void
language plpgsql set search_path = ''
as $$
declare
  t record;
begin
  for t in
    select n.nspname, c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
     where n.nspname in ('keap', 'keapsync') and c.relkind in ('r', 'p') and c.relrowsecurity
       and not exists (select 1 from pg_policy p where p.polrelid = c.oid and p.polname = 'keapsync_sidecar_all')
  loop
    execute format('create policy keapsync_sidecar_all on %I.%I for all to keapsync_sidecar using (true) with check (true)',
                   t.nspname, t.relname);
  end loop;
end;
$$;
revoke execute on function keapsync.grant_sidecar_rls() from public, keapsync_sidecar;
select keapsync.grant_sidecar_rls();

do $$
begin
  if not exists (select 1 from pg_publication where pubname = 'keapsync_push') then
    create publication keapsync_push for table keap.contacts, keap.tag_categories, keap.tags, keap.contact_tags,
      keap.orders, keap.subscriptions with (publish = 'insert, update, delete');
  end if;
end
$$;

-- `keapsync doctor` run as the sidecar reads which migrations are applied: versions and names only,
-- not the statements. The history table exists here: both `supabase db push` and `keapsync
-- migrate` create it before the first migration.
grant usage on schema supabase_migrations to keapsync_sidecar;
grant select (version, name) on supabase_migrations.schema_migrations to keapsync_sidecar;
