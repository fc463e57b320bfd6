-- Keap timestamps: a zone or offset means what it says; without one the time is UTC, whatever
-- the session's TimeZone.
begin;
create extension if not exists pgtap;
select plan(7);

set local timezone to 'America/New_York';
select is(keapsync.keap_time('2026-01-01T12:00:00.123Z'), '2026-01-01 12:00:00.123+00'::timestamptz, 'Z is UTC');
select is(keapsync.keap_time('2026-01-01T12:00:00.123+0100'), '2026-01-01 11:00:00.123+00'::timestamptz, 'an offset is honoured');
select is(keapsync.keap_time('2026-01-01T12:00:00-05:00'), '2026-01-01 17:00:00+00'::timestamptz, 'an offset with a colon is honoured');
select is(keapsync.keap_time('2026-01-01T12:00:00.5'), '2026-01-01 12:00:00.5+00'::timestamptz, 'no zone: UTC, not the session zone');
select is(keapsync.keap_time('2026-01-01 12:00:00'), '2026-01-01 12:00:00+00'::timestamptz, 'space instead of T, no zone: UTC');
select is(keapsync.keap_time('2026-01-03'), '2026-01-03 00:00:00+00'::timestamptz, 'a date alone is midnight UTC');
select is(keapsync.keap_time('  '), null, 'empty is null');

select * from finish();
rollback;
