// Package push carries local edits of the keap.* tables to Keap: it tails logical replication
// (pgoutput) and turns "record X changed" into Keap API calls decided by SQL.
//
// # Durability: enqueue, then confirm
//
// The consumer owns a publication and a named logical replication slot. For every local change
// it reads it records only (account, object type, local id) with keapsync.enqueue_push, which
// coalesces: one queue row per record, however often it changed. Changes are written in
// batches, one transaction per batch, and only after that transaction commits does the consumer
// confirm the end LSN of the last transaction it received whole. So the slot never holds WAL
// while Keap is slow or down (the queue holds the work, not the WAL), and a crash at any point
// loses nothing: what was not confirmed is sent again, and enqueueing twice is harmless. While
// nothing is pending, the keepalive's WAL position is confirmed too, so WAL of unrelated
// tables is released.
//
// A commit reaches the stream a moment before other sessions see it (PostgreSQL writes the
// commit record, then takes the transaction out of the running ones; a synchronous standby
// stretches that moment). A batch is written only once a snapshot sees every transaction that
// made its changes: a worker claiming a row queued earlier would read the record as it was
// before the change, find nothing to push and take the row off the queue, losing the change.
//
// # No echo
//
// Writes made on behalf of Keap run with the transaction-local setting keapsync.origin =
// 'keap'; a BEFORE trigger stamps it into each row's sync_origin column, so the marker travels
// in the replication stream itself and the consumer drops those rows. Deletes carry only the
// primary key: their account is found in keapsync.sync_state, which keeps the row only when a
// local delete is to be propagated (Keap's own deletes and unpropagated ones leave nothing to
// find). A tag change on a contact (keap.contact_tags) is a change of that contact. Whatever
// slips through still costs no call: keapsync.push_request compares the row with the agreed
// state and answers "none".
//
// # Pushing
//
// Workers claim due queue rows (FOR UPDATE SKIP LOCKED, then a lease) and take a session
// advisory lock per record, so two workers, in one process or two, never push one record at
// once. A record rests for Settle after its first change (longer while it keeps changing, up
// to MaxSettle), and the worker reads keapsync.push_request at send time, so ten quick edits
// become one PATCH with only the changed fields (update_mask). Before an update it applies
// Keap's current version of the contact (keapsync.apply_keap_record), so a field changed in Keap
// since the agreed state meets the conflict policy instead of being overwritten. Several due
// contact updates of one account are read with one listing of the contacts changed since the
// versions held (preread.go), each listed version applied as the update's own read would be;
// an update reads its contact itself when no listing read it after its change was queued, and
// not at all when a version applied within KnownFor is known current (knownCurrent says when,
// and what that gives up). It sends the request and records Keap's answer with
// keapsync.mark_pushed in the same transaction that removes the queue row (only if no newer
// change arrived meanwhile; mark_pushed queues the record again when a Keap version merged in
// while the call was out took a field it sent, so the merge's choice reaches Keap). A crash between Keap's answer and that commit repeats the push:
// PATCH, tag calls and deletes are idempotent; contacts with an email are created with PUT
// create-or-update by email; other creates are marked in the queue row before they are sent
// (push_queue.create_sent_at), and a marked create first looks in Keap for the record it may
// have made.
//
// A claimed job reads top to bottom: worker.go claims rows, has preread.go read the claimed
// contacts with one listing where that saves calls, and hands each row to a pushJob (PushOnce,
// run), whose methods are the steps of its push. send.go reads the request and picks the path
// (push, request, send) and holds the deletes (ours, and Keap's met by a write); contact.go a
// contact's create or update and its tags; create.go the other creates and the lookups a marked
// create makes; objects.go the v2 types; job.go what is recorded of the queue row (the marks
// before a call, then done, retry or parked).
//
// Keap's 4xx for a record parks it in keapsync.dead_letters and lets everything else flow;
// 5xx, 429, 401/403 and network errors keep it queued with exponential backoff.
//
// # High availability
//
// The slot admits one reader: a second process finds it active, stands by, and takes it over
// within ReconnectDelay after the first one's connection ends, resuming at the confirmed LSN.
// Workers in every process share the queue.
package push
