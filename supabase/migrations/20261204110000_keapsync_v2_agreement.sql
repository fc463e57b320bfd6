-- Whether Keap's v2 copy of a record keapsync reads through v1 (a note), put in v1's shape
-- (keap.NoteAsV1), is exactly the v1 record. Keap documents neither that v2's note times have
-- v1's precision nor that v2's assigned_to_user is v1's user_id (docs/keap/FACTS.md §7), so
-- keapsync finds out: every read of notes that brings both versions of the same note (a sweep's
-- page, a hooked batch) compares them. While every comparison agreed, and enough of them, a
-- batch of hooked note changes is read by id through v2 (a call per 500) instead of listing
-- every note through v1 (a call per 1,000 notes in the account); one difference ends that for
-- the account. Delete the row to have keapsync look again.
create table keapsync.v2_agreement (
  account_id uuid not null references keapsync.accounts (id) on delete cascade,
  object_type text not null references keapsync.object_types (object_type),
  agreed bigint not null default 0,      -- pairs whose v2 version, in v1's shape, was the v1 one
  differed bigint not null default 0,    -- pairs that were not
  difference text,                       -- the first difference seen, for a person
  -- v1's last_updated_by objects by user id: v2 names the last updater only by id.
  users jsonb not null default '{}',
  updated_at timestamptz not null default now(),
  primary key (account_id, object_type)
);
alter table keapsync.v2_agreement enable row level security;
revoke all on keapsync.v2_agreement from public, anon, authenticated;
grant all on keapsync.v2_agreement to service_role;

select keapsync.grant_sidecar_rls();
