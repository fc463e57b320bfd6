-- keapsync.owns_row (20261203100000_keapsync_tenant_ids.sql) answered "is this local id a row of
-- this account" for row_doc(account, type, id) alone. Since 20261204130000_keapsync_apply_plans_once.sql
-- row_doc reads the account's row itself, in one query, and nothing calls owns_row: no SQL of
-- keapsync's, no sidecar of any release (it was granted to service_role only).
drop function keapsync.owns_row(uuid, text, bigint);
