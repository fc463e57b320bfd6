-- Credentials and the shared Keap request budget.
--
-- oauth_states: the `state` of an OAuth authorization in flight, so the callback can be served by
-- any sidecar process and a forged or replayed callback is refused (CSRF).
-- rate_budget_members: sidecar processes drawing on one Keap budget (one OAuth app, or one
-- tenant) announce themselves; each sizes its own limiter as the budget divided by the live
-- members, so two processes never each spend the full 1500/min.

create table keapsync.oauth_states (
  state text primary key,
  redirect_uri text not null,
  created_at timestamptz not null default now(),
  expires_at timestamptz not null default now() + interval '10 minutes'
);

create table keapsync.rate_budget_members (
  budget_key text not null,
  member_id text not null,
  heartbeat_at timestamptz not null default now(),
  primary key (budget_key, member_id)
);

alter table keapsync.oauth_states enable row level security;
alter table keapsync.rate_budget_members enable row level security;
-- No policies and no grants beyond the service role's: nobody else sees or touches these.
grant all on keapsync.oauth_states, keapsync.rate_budget_members to service_role;

-- Announce (or keep alive) a member of a budget, forget members silent for longer than p_ttl, and
-- return how many members share the budget now (at least 1: the caller).
create or replace function keapsync.rate_budget_share(p_key text, p_member text, p_ttl interval default interval '15 seconds')
returns integer
language plpgsql volatile security definer set search_path = ''
as $$
declare
  n integer;
begin
  insert into keapsync.rate_budget_members (budget_key, member_id, heartbeat_at)
  values (p_key, p_member, now())
  on conflict (budget_key, member_id) do update set heartbeat_at = excluded.heartbeat_at;
  delete from keapsync.rate_budget_members where budget_key = p_key and heartbeat_at < now() - p_ttl;
  select count(*) into n from keapsync.rate_budget_members where budget_key = p_key;
  return greatest(n, 1);
end;
$$;

create or replace function keapsync.rate_budget_leave(p_key text, p_member text) returns void
language sql volatile security definer set search_path = ''
as $$
  delete from keapsync.rate_budget_members where budget_key = p_key and member_id = p_member;
$$;

-- Take an OAuth state once: true if it existed and had not expired. A state is never accepted twice.
create or replace function keapsync.take_oauth_state(p_state text) returns text
language sql volatile security definer set search_path = ''
as $$
  delete from keapsync.oauth_states where state = p_state and expires_at > now() returning redirect_uri;
$$;

revoke execute on function keapsync.rate_budget_share(text, text, interval), keapsync.rate_budget_leave(text, text),
  keapsync.take_oauth_state(text) from public;
grant execute on function keapsync.rate_budget_share(text, text, interval), keapsync.rate_budget_leave(text, text),
  keapsync.take_oauth_state(text) to service_role;
