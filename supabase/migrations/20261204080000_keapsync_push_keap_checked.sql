-- A queued contact update remembers when Keap's current version of the contact was last read for
-- it: the push worker lists the account's contacts changed since the versions it holds (one
-- GET /v1/contacts?since=… for several due updates instead of one GET each), applies each listed
-- version as the fetch-before-update would, and notes the database's time taken before the
-- listing went out. An update whose change was queued before that time, and which no hook for
-- the contact has overtaken, goes without its own read: the listing was that read.
--
-- It lives on the queue row, not on the sync state, because it answers for one queued change:
-- the row goes when the push is recorded, and a later local change (last_enqueued_at) outdates it.
alter table keapsync.push_queue add column if not exists keap_checked_at timestamptz;

comment on column keapsync.push_queue.keap_checked_at is
  'database time before a listing that read Keap''s current version of this contact and applied it (the fetch-before-update done for several due updates at once); counts for changes queued before it';
