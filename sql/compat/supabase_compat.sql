-- Supabase compatibility bootstrap for plain PostgreSQL 15+.
--
-- Creates what a Supabase project provides and plain PostgreSQL lacks, so the migrations in
-- supabase/migrations apply unchanged to a local or CI database: the API roles, the `auth` schema
-- with its helper functions and a trimmed `auth.users`, the `supabase_realtime` publication and the
-- `realtime` broadcast functions. It is idempotent (run it as often as you like) and it must NEVER
-- run against a real Supabase project, which has the real thing. `keapsync migrate` runs it only
-- when the database lacks these objects, and says so.
--
-- Definitions follow supabase/postgres init scripts, supabase/auth and supabase/realtime
-- migrations; ownership mirrors Supabase (auth and realtime owned by supabase_admin) because the
-- CLI's remote `db reset` drops every schema not owned by supabase_admin.

do $roles$
declare
  r record;
begin
  for r in
    select * from (values
      ('anon',                      'nologin noinherit'),
      ('authenticated',             'nologin noinherit'),
      ('service_role',              'nologin noinherit bypassrls'),
      ('authenticator',             'login noinherit'),
      ('supabase_admin',            'nologin'),
      ('supabase_auth_admin',       'nologin noinherit'),
      ('supabase_realtime_admin',   'nologin noinherit'),
      ('supabase_replication_admin','nologin replication'),
      ('dashboard_user',            'nologin')
    ) as t(name, opts)
  loop
    if not exists (select 1 from pg_roles where rolname = r.name) then
      execute format('create role %I %s', r.name, r.opts);
    end if;
  end loop;
end
$roles$;

grant anon, authenticated, service_role to authenticator;
grant supabase_realtime_admin to postgres;
alter role anon set statement_timeout = '3s';
alter role authenticated set statement_timeout = '8s';

-- Schema `extensions`, where Supabase installs uuid-ossp and pgcrypto.
create schema if not exists extensions;
grant usage on schema extensions to postgres, anon, authenticated, service_role;
create extension if not exists pgcrypto with schema extensions;
create extension if not exists "uuid-ossp" with schema extensions;

-- Schema `auth`: the users table (trimmed to the columns keapsync and GoTrue's JWTs use) and the
-- helper functions, verbatim from supabase/auth.
create schema if not exists auth authorization supabase_admin;
grant all on schema auth to supabase_auth_admin;
grant usage on schema auth to postgres, anon, authenticated, service_role;

create table if not exists auth.users (
  instance_id uuid,
  id uuid not null primary key,
  aud varchar(255),
  role varchar(255),
  email varchar(255),
  encrypted_password varchar(255),
  email_confirmed_at timestamptz,
  raw_app_meta_data jsonb,
  raw_user_meta_data jsonb,
  is_super_admin boolean,
  created_at timestamptz,
  updated_at timestamptz,
  is_anonymous boolean not null default false
);
alter table auth.users owner to supabase_auth_admin;
grant select on auth.users to postgres, service_role;

create or replace function auth.uid() returns uuid
language sql stable set search_path = ''
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.sub', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
  )::uuid
$$;

create or replace function auth.role() returns text
language sql stable set search_path = ''
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.role', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
  )::text
$$;

create or replace function auth.email() returns text
language sql stable set search_path = ''
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.email', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'email')
  )::text
$$;

create or replace function auth.jwt() returns jsonb
language sql stable set search_path = ''
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim', true), ''),
    nullif(current_setting('request.jwt.claims', true), '')
  )::jsonb
$$;

alter function auth.uid() owner to supabase_auth_admin;
alter function auth.role() owner to supabase_auth_admin;
alter function auth.email() owner to supabase_auth_admin;
alter function auth.jwt() owner to supabase_auth_admin;
grant execute on function auth.uid(), auth.role(), auth.email(), auth.jwt()
  to postgres, anon, authenticated, service_role;

-- The publication Supabase creates empty for Postgres Changes.
do $pub$
begin
  if not exists (select 1 from pg_publication where pubname = 'supabase_realtime') then
    create publication supabase_realtime;
  end if;
end
$pub$;

-- Schema `realtime`: the broadcast surface (`realtime.messages`, `topic`, `send`,
-- `broadcast_changes`) as the Realtime server's migrations create it. The table is not partitioned
-- here; nothing in keapsync depends on partitioning. Without a Realtime server nothing reads it,
-- so keapsync's triggers also `pg_notify` for the local fallback.
create schema if not exists realtime authorization supabase_admin;
grant usage on schema realtime to postgres, anon, authenticated, service_role;

create table if not exists realtime.messages (
  topic text not null,
  extension text not null,
  payload jsonb,
  event text,
  private boolean default false,
  updated_at timestamp without time zone not null default now(),
  inserted_at timestamp without time zone not null default now(),
  id uuid not null default gen_random_uuid(),
  primary key (id, inserted_at)
);
alter table realtime.messages owner to supabase_realtime_admin;
alter table realtime.messages enable row level security;
grant select, insert, update on realtime.messages to postgres, anon, authenticated, service_role;

create or replace function realtime.topic() returns text
language sql stable
as $$
  select nullif(current_setting('realtime.topic', true), '')::text;
$$;
alter function realtime.topic() owner to supabase_realtime_admin;

create or replace function realtime.send(payload jsonb, event text, topic text, private boolean default true)
returns void
language plpgsql
as $$
begin
  begin
    -- Set the topic configuration
    execute format('set local realtime.topic to %L', topic);
    -- Attempt to insert the message
    insert into realtime.messages (payload, event, topic, private, extension)
    values (payload, event, topic, private, 'broadcast');
  exception
    when others then
      -- Capture and notify the error
      raise warning 'ErrorSendingBroadcastMessage: %', sqlerrm;
  end;
end;
$$;
alter function realtime.send(jsonb, text, text, boolean) owner to supabase_admin;

create or replace function realtime.broadcast_changes(
  topic_name text, event_name text, operation text, table_name text, table_schema text,
  new record, old record, level text default 'ROW')
returns void
language plpgsql
as $$
declare
  row_data jsonb := '{}'::jsonb;
begin
  if level = 'STATEMENT' then
    raise exception 'function can only be triggered for each row, not for each statement';
  end if;
  if operation = 'INSERT' or operation = 'UPDATE' or operation = 'DELETE' then
    row_data := jsonb_build_object('old_record', old, 'record', new, 'operation', operation,
                                   'table', table_name, 'schema', table_schema);
    perform realtime.send(row_data, event_name, topic_name);
  else
    raise exception 'Unexpected operation type: %', operation;
  end if;
end;
$$;
alter function realtime.broadcast_changes(text, text, text, text, text, record, record, text) owner to supabase_admin;
grant execute on function realtime.topic(), realtime.send(jsonb, text, text, boolean),
  realtime.broadcast_changes(text, text, text, text, text, record, record, text)
  to postgres, anon, authenticated, service_role;
