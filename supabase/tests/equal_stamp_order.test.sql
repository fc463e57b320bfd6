-- Keap's clock orders Keap's versions; when two carry the same stamp (whole-second stamps) and
-- other content, when each was asked for orders them: a version asked for after the stored one
-- was applied is merged; one asked for before is not trusted over it, and a fresh read is queued
-- instead. A caller that does not say when it asked is merged as before.
begin;
create extension if not exists pgtap;
select plan(16);

insert into keapsync.accounts (id, name) values ('14000000-0000-4000-8000-000000000001', 'A');
insert into keapsync.settings (account_id, default_policy) values ('14000000-0000-4000-8000-000000000001', 'newest_wins');

create function pg_temp.contact(p_name text, p_stamp text) returns jsonb language sql as $$
  select jsonb_build_object('id', 1, 'given_name', p_name, 'family_name', 'Lovelace',
    'date_created', '2026-01-01T00:00:00.000Z', 'last_updated', p_stamp);
$$;
-- Applies p_raw as asked for at p_asked (null: not said).
create function pg_temp.apply(p_raw jsonb, p_asked timestamptz) returns text language plpgsql as $$
begin
  perform keapsync.set_asked_at(p_asked);
  return keapsync.apply_keap_record('14000000-0000-4000-8000-000000000001', 'contact', p_raw);
end;
$$;
create function pg_temp.name() returns text language sql as $$
  select given_name from keap.contacts where keap_id = 1;
$$;
create function pg_temp.rechecks() returns bigint language sql as $$
  select count(*) from keapsync.webhook_inbox where account_id = '14000000-0000-4000-8000-000000000001'
     and event_key = 'contact.recheck' and object_type = 'contact' and object_ids = '{1}' and processed_at is null;
$$;
create temp table asked (what text primary key, at timestamptz);

select is(pg_temp.apply(pg_temp.contact('Ada', '2026-03-01T10:00:00.000Z'), clock_timestamp()), 'inserted', 'first version inserted');
-- A hook's GET is asked for now; our PATCH goes after it, and its answer is applied first.
insert into asked values ('hook', clock_timestamp());
select pg_sleep(0.01);
select is(pg_temp.apply(pg_temp.contact('Ours', '2026-03-01T10:00:05.000Z'), clock_timestamp()), 'updated', 'our PATCH answer merged');
select ok((select keap_seen_at > (select at from asked where what = 'hook') from keapsync.sync_state
            where account_id = '14000000-0000-4000-8000-000000000001' and keap_id = 1),
          'the stored version keeps when it was applied');

-- ---- asked for before the stored version was in: ambiguous ------------------------------------
select is(pg_temp.apply(pg_temp.contact('Keap', '2026-03-01T10:00:05.000Z'), (select at from asked where what = 'hook')),
          'ambiguous', 'same stamp, other content, asked for before the stored version was in: not trusted');
select is(pg_temp.name(), 'Ours', 'the stored version stays');
select is(pg_temp.rechecks(), 1::bigint, 'a fresh read of the record is queued');
select is(pg_temp.apply(pg_temp.contact('Keap', '2026-03-01T10:00:05.000Z'), (select at from asked where what = 'hook')),
          'ambiguous', 'the same tie again is ambiguous again');
select is(pg_temp.rechecks(), 1::bigint, 'one read queued, not one per tie');
select keapsync.set_asked_at((select at from asked where what = 'hook'));
select is((keapsync.apply_keap_page('14000000-0000-4000-8000-000000000001', 'contact',
             array[pg_temp.contact('Keap', '2026-03-01T10:00:05.000Z')]) ->> 'ambiguous')::int, 1,
          'a page asked for before (a sweep) meets the same rule');
select is(pg_temp.apply(pg_temp.contact('Ours', '2026-03-01T10:00:05.000Z'), (select at from asked where what = 'hook')),
          'duplicate', 'the same content at the same stamp is a duplicate, whenever asked for');
select is(pg_temp.apply(pg_temp.contact('Old', '2026-03-01T10:00:04.000Z'), clock_timestamp()),
          'stale', 'a strictly older stamp is stale, however late it was asked for');

-- ---- asked for after: the fresh read settles the tie ------------------------------------------
select is(pg_temp.apply(pg_temp.contact('Keap', '2026-03-01T10:00:05.000Z'), clock_timestamp()),
          'updated', 'same stamp, other content, asked for after the stored version was in: merged');
select is(pg_temp.name(), 'Keap', 'the newer version landed');
select is(pg_temp.apply(pg_temp.contact('Keap', '2026-03-01T10:00:06.000Z'), (select at from asked where what = 'hook')),
          'unchanged', 'a newer stamp is merged whenever it was asked for');

-- ---- not said: as before ------------------------------------------------------------------------
select is(pg_temp.apply(pg_temp.contact('Augusta', '2026-03-01T10:00:06.000Z'), null),
          'updated', 'a caller that does not say when it asked: same stamp, other content merged');
select is(pg_temp.name(), 'Augusta', 'and landed');

select * from finish();
rollback;
