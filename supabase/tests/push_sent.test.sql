-- A push Keap took but whose answer never reached us: the values it sent (push_queue.sent), once
-- a Keap version shows them, are agreed, not an edit made in Keap that could win a conflict
-- against what was edited here since (20261127097000_keapsync_push_sent_fields.sql).
begin;
create extension if not exists pgtap;
select plan(8);

insert into keapsync.accounts (id, name) values ('20000000-0000-4000-8000-000000000002', 'S');
-- keap_wins: without the noted push, Keap's version would always win.
insert into keapsync.settings (account_id, default_policy) values ('20000000-0000-4000-8000-000000000002', 'keap_wins');

create function pg_temp.contact(p_id bigint, p_updated text, p_job text) returns jsonb
language sql as $$
  select jsonb_build_object('id', p_id, 'given_name', 'Ada', 'job_title', p_job,
    'email_addresses', jsonb_build_array(jsonb_build_object('email', 'ada' || p_id || '@example.com', 'field', 'EMAIL1')),
    'last_updated', p_updated);
$$;
create function pg_temp.apply(p_raw jsonb) returns text language sql as $$
  select keapsync.apply_keap_record('20000000-0000-4000-8000-000000000002', 'contact', p_raw);
$$;
create function pg_temp.job(p_keap_id bigint) returns text language sql as $$
  select job_title from keap.contacts where keap_id = p_keap_id;
$$;
-- Synced at job title Owner, then: a push of First that Keap took (its answer lost), and an
-- edit to Second here since.
create function pg_temp.lost_push(p_keap_id bigint, p_sent jsonb) returns void language plpgsql as $$
begin
  perform pg_temp.apply(pg_temp.contact(p_keap_id, '2026-03-01T10:00:00.000Z', 'Owner'));
  perform keapsync.set_origin('local');
  update keap.contacts set job_title = 'Second' where keap_id = p_keap_id;
  insert into keapsync.push_queue (account_id, object_type, local_id, sent)
  select account_id, 'contact', id, p_sent from keap.contacts where keap_id = p_keap_id;
end;
$$;

-- Keap shows exactly what the push sent.
select pg_temp.lost_push(1, '{"job_title": "First"}');
select pg_temp.apply(pg_temp.contact(1, '2026-03-01T10:00:05.000Z', 'First'));
select is(pg_temp.job(1), 'Second', 'the later local edit stands');
select is((select agreed ->> 'job_title' from keapsync.sync_state where keap_id = 1), 'First', 'what the push sent is agreed');
select is((select count(*)::int from keapsync.conflicts where keap_id = 1), 0, 'no conflict');
select is(keapsync.pending_push('20000000-0000-4000-8000-000000000002', 'contact',
            (select id from keap.contacts where keap_id = 1)) -> 'fields' ->> 'job_title', 'Second',
          'and the later edit is what goes to Keap next');

-- Keap shows something else: an edit made in Keap after the push, merged as ever.
select pg_temp.lost_push(2, '{"job_title": "First"}');
select pg_temp.apply(pg_temp.contact(2, '2026-03-01T10:00:05.000Z', 'Third'));
select is(pg_temp.job(2), 'Third', 'an edit made in Keap meanwhile still wins under keap_wins');
select is((select count(*)::int from keapsync.conflicts where keap_id = 2), 1, 'as a conflict');

-- Nothing noted: the same as before this migration.
select pg_temp.lost_push(3, null);
select pg_temp.apply(pg_temp.contact(3, '2026-03-01T10:00:05.000Z', 'First'));
select is(pg_temp.job(3), 'First', 'without a noted push, Keap''s value is an edit made in Keap');

-- A cleared field: sent as null, absent from Keap's version.
select pg_temp.lost_push(4, '{"job_title": null}');
select pg_temp.apply(pg_temp.contact(4, '2026-03-01T10:00:05.000Z', null));
select is(pg_temp.job(4), 'Second', 'a field the push cleared, absent in Keap, is agreed as cleared');

select * from finish();
rollback;
