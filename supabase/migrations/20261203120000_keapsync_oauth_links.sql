-- Connecting a Keap account needs an operator's one-time link (issue #12).
--
-- /oauth/start used to be open to anyone who reached the listener: whoever approved at Keap became
-- a tenant, and every anonymous GET left an oauth_states row behind. Now `keapsync auth link`
-- stores the SHA-256 of a random link token here (the token itself exists only in the printed
-- URL); /oauth/start takes the link once, within its lifetime, and only then stores a state.
-- Expired links and states are deleted whenever a link is made, a flow starts or a state is taken,
-- so neither table grows with requests nobody authorised.

create table keapsync.oauth_links (
  link_hash bytea primary key check (octet_length(link_hash) = 32),
  created_at timestamptz not null default now(),
  expires_at timestamptz not null
);
create index oauth_links_expires_at on keapsync.oauth_links (expires_at);
create index oauth_states_expires_at on keapsync.oauth_states (expires_at);

alter table keapsync.oauth_links enable row level security;
-- No policies and no grants beyond the service role's, as for oauth_states.
grant all on keapsync.oauth_links to service_role;

-- Forget every expired link and state.
create or replace function keapsync.purge_oauth_expired() returns void
language sql volatile security definer set search_path = ''
as $$
  delete from keapsync.oauth_links where expires_at <= now();
  delete from keapsync.oauth_states where expires_at <= now();
$$;

-- Record a one-time connect link (its token's SHA-256) valid for p_ttl; returns when it expires.
create or replace function keapsync.new_oauth_link(p_link_hash bytea, p_ttl interval default interval '15 minutes')
returns timestamptz
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_expires timestamptz;
begin
  if p_ttl is null or p_ttl <= interval '0' or p_ttl > interval '1 day' then
    raise exception 'a connect link lives between a second and a day, not %', p_ttl using errcode = '22023';
  end if;
  perform keapsync.purge_oauth_expired();
  insert into keapsync.oauth_links (link_hash, expires_at) values (p_link_hash, now() + p_ttl)
  returning expires_at into v_expires;
  return v_expires;
end;
$$;

-- Start a connection: take the link once (false if it is unknown, used or expired) and store the
-- OAuth state the callback will take.
create or replace function keapsync.start_oauth(p_link_hash bytea, p_state text, p_redirect_uri text)
returns boolean
language plpgsql volatile security definer set search_path = ''
as $$
begin
  perform keapsync.purge_oauth_expired();
  delete from keapsync.oauth_links where link_hash = p_link_hash and expires_at > now();
  if not found then
    return false;
  end if;
  insert into keapsync.oauth_states (state, redirect_uri) values (p_state, p_redirect_uri);
  return true;
end;
$$;

-- Take an OAuth state once (its redirect URI, or null if unknown or expired), forgetting expired ones.
create or replace function keapsync.take_oauth_state(p_state text) returns text
language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_redirect text;
begin
  perform keapsync.purge_oauth_expired();
  delete from keapsync.oauth_states where state = p_state and expires_at > now() returning redirect_uri into v_redirect;
  return v_redirect;
end;
$$;

revoke execute on function keapsync.purge_oauth_expired(), keapsync.new_oauth_link(bytea, interval),
  keapsync.start_oauth(bytea, text, text), keapsync.take_oauth_state(text) from public, anon, authenticated;
grant execute on function keapsync.purge_oauth_expired(), keapsync.new_oauth_link(bytea, interval),
  keapsync.start_oauth(bytea, text, text), keapsync.take_oauth_state(text) to service_role;
