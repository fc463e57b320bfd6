-- Marketable email (issue 13): consent recorded here travels with a contact created from Postgres.
-- Keap makes an address marketable (email_status SingleOptIn) only when the create carries an
-- opt_in_reason; without one the address stays non-marketable and Keap will not email it. The
-- column is local only: it is not merged or compared with Keap (Keap does not return the reason
-- by default, and its own email_status / email_opted_in columns report the result), and it is
-- sent once, when keapsync creates the contact in Keap.
alter table keap.contacts add column if not exists email_opt_in_reason text;

comment on column keap.contacts.email_opt_in_reason is
  'Why this person agreed to receive email (e.g. "Signed up on the website form"). Set it before the contact reaches Keap: keapsync creates the contact with this opt_in_reason, so Keap marks the address marketable. Empty: created non-marketable. Not sent for contacts that already exist in Keap.';
