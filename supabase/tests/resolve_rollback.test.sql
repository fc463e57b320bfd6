-- Resolving conflicts (keep Keap, keep local, a given value, bulk by policy), rolling back any
-- recorded change, and dead-letter actions.
begin;
create extension if not exists pgtap;
select plan(25);

insert into keapsync.accounts (id, name) values ('20000000-0000-4000-8000-000000000002', 'B');
insert into keapsync.settings (account_id, default_policy) values ('20000000-0000-4000-8000-000000000002', 'manual');

create function pg_temp.apply(p_id bigint, p_updated text, p_fields jsonb) returns text language sql as $$
  select keapsync.apply_keap_record('20000000-0000-4000-8000-000000000002', 'contact',
    jsonb_build_object('id', p_id, 'last_updated', p_updated) || p_fields);
$$;
create function pg_temp.pending(p_keap_id bigint) returns jsonb language sql as $$
  select keapsync.pending_push('20000000-0000-4000-8000-000000000002', 'contact',
    (select id from keap.contacts where keap_id = p_keap_id)) -> 'fields';
$$;
create function pg_temp.conflict(p_keap_id bigint, p_field text) returns bigint language sql as $$
  select id from keapsync.conflicts where keap_id = p_keap_id and field = p_field and status = 'open';
$$;

-- Three contacts, each with a manual conflict on job_title.
select pg_temp.apply(i, '2026-04-01T00:00:00.000Z', '{"given_name": "X", "job_title": "base"}') from generate_series(1, 4) i;
update keap.contacts set job_title = 'ours' where keap_id between 1 and 4;
select pg_temp.apply(i, '2026-04-02T00:00:00.000Z', '{"given_name": "X", "job_title": "theirs"}') from generate_series(1, 4) i;
select is((select count(*) from keapsync.conflicts where status = 'open')::int, 4, 'four manual conflicts');

select is((keapsync.resolve_conflict(pg_temp.conflict(1, 'job_title'), 'keap')).resolution, 'keap', 'resolve: keep Keap''s');
select is((select job_title from keap.contacts where keap_id = 1), 'theirs', 'the row takes Keap''s value');
select is(pg_temp.pending(1), '{}'::jsonb, 'nothing to push after keeping Keap''s');
select is((select count(*)::int from keapsync.push_queue q join keap.contacts c on c.id = q.local_id where c.keap_id = 1), 0,
          '... and nothing queued');

select lives_ok($$select keapsync.resolve_conflict(pg_temp.conflict(2, 'job_title'), 'local')$$, 'resolve: keep local');
select is((select job_title from keap.contacts where keap_id = 2), 'ours', 'the row keeps ours');
select is(pg_temp.pending(2), '{"job_title": "ours"}'::jsonb, 'and ours is pending push');
select is((select count(*)::int from keapsync.push_queue q join keap.contacts c on c.id = q.local_id
             where c.keap_id = 2 and q.object_type = 'contact' and q.next_attempt_at <= now()), 1,
          '... and queued for push, though the row did not change');

select lives_ok($$select keapsync.resolve_conflict(pg_temp.conflict(3, 'job_title'), 'value', '"merged"')$$, 'resolve: a given value');
select is((select job_title from keap.contacts where keap_id = 3), 'merged', 'the row takes the given value');
select is(pg_temp.pending(3), '{"job_title": "merged"}'::jsonb, 'and it is pending push');
select is((select count(*)::int from keapsync.push_queue q join keap.contacts c on c.id = q.local_id where c.keap_id = 3), 1,
          '... and queued');

select throws_ok($$select keapsync.resolve_conflict((select id from keapsync.conflicts where keap_id = 1 and field = 'job_title'), 'keap')$$,
                 '55000', null, 'a resolved conflict cannot be resolved again');
select throws_ok($$select keapsync.resolve_conflict(pg_temp.conflict(4, 'job_title'), 'mine')$$, '22023', null,
                 'an unknown choice is refused');

select is(keapsync.resolve_conflicts_by_policy('20000000-0000-4000-8000-000000000002', 'keap_wins'), 1, 'bulk resolve by policy');
select is((select job_title from keap.contacts where keap_id = 4), 'theirs', 'bulk keap_wins took Keap''s value');
select is((select count(*) from keapsync.conflicts where status = 'open')::int, 0, 'no conflict left open');

-- ---- rollback ----------------------------------------------------------------------------------
-- Roll back the Keap change that set contact 1's job_title: the old value returns as a local edit.
select isnt(keapsync.rollback_change((select id from keapsync.change_history where keap_id = 1 and origin = 'resolve'
                                        or (keap_id = 1 and origin = 'keap' and changed ? 'job_title')
                                       order by id desc limit 1)), null, 'rollback returns the change it made');
select is((select job_title from keap.contacts where keap_id = 1), 'ours', 'the field is back to its old value');
select is(pg_temp.pending(1), '{"job_title": "ours"}'::jsonb, 'a rollback is an ordinary local change: pending push');
select throws_ok($$select keapsync.rollback_change((select id from keapsync.change_history where rolled_back_by is not null limit 1))$$,
                 '55000', null, 'a change is rolled back only once');

-- Roll back a local delete: the row comes back with its id.
create temp table before_delete as select id from keap.contacts where keap_id = 2;
delete from keap.contacts where keap_id = 2;
select lives_ok($$select keapsync.rollback_change((select id from keapsync.change_history where op = 'delete' and keap_id = 2 order by id desc limit 1))$$,
                'roll back a delete');
select is((select id from keap.contacts where given_name = 'X' and job_title = 'ours' and id = (select id from before_delete)),
          (select id from before_delete), 'the deleted row is back with its id');

-- ---- dead letters ------------------------------------------------------------------------------
insert into keapsync.dead_letters (account_id, source, object_type, keap_id, error, http_status)
values ('20000000-0000-4000-8000-000000000002', 'push', 'contact', 9, 'Invalid email', 400);
select is((keapsync.retry_dead_letter((select id from keapsync.dead_letters limit 1))).status, 'retry', 'a dead letter can be retried');

select * from finish();
rollback;
