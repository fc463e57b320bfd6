-- Three foreign keys to keapsync.accounts checked nothing another key of the same row did not
-- (issue #18: every key is a lookup per row written). A contact's tag, an order's item and an
-- order's payment each reference their parent by (account_id, parent id), and the parent
-- references the account: the account exists, and deleting it cascades through the parent.
-- In a backfill of contacts, the tags' key was one lookup per tag on every page.
-- supabase/tests/account_delete.test.sql proves an account's delete still leaves nothing.

alter table keap.contact_tags drop constraint contact_tags_account_id_fkey;
alter table keap.order_items drop constraint order_items_account_id_fkey;
alter table keap.order_payments drop constraint order_payments_account_id_fkey;
