-- The push's batched pre-read looks, on every claim, for an account's next contact updates due
-- (keapsync.push_queue by next_attempt_at, a few dozen). With only push_queue_due_idx (all
-- accounts' rows by time) it read every row the account has queued and sorted them: a bulk edit
-- of N contacts cost N rows per claim, N²/4 in all. This index walks the account's due rows in
-- order and stops at the few it needs.
create index push_queue_account_due_idx on keapsync.push_queue (account_id, object_type, next_attempt_at);
