-- The push queue's set-based enqueue: duplicates in one call coalesce, the newest LSN is kept,
-- a re-enqueue makes a backed-off record due again and notes when it came, and enqueue_push is
-- the same rule. enqueue_unstreamed queues exactly the records with a local change not yet pushed.
begin;
create extension if not exists pgtap;
select plan(9);

insert into keapsync.accounts (id, name) values ('71000000-0000-4000-8000-000000000007', 'Queue');
select is(keapsync.enqueue_pushes(
  array['71000000-0000-4000-8000-000000000007', '71000000-0000-4000-8000-000000000007', '71000000-0000-4000-8000-000000000007']::uuid[],
  array['contact', 'contact', 'tag'], array[1, 1, 1]::bigint[], array['0/10', '0/20', '0/5']::pg_lsn[]),
  2, 'one row per record');
select is((select last_lsn from keapsync.push_queue where object_type = 'contact' and local_id = 1), '0/20'::pg_lsn,
  'the newest LSN is kept');
update keapsync.push_queue set next_attempt_at = now() + interval '1 hour', attempts = 3,
       first_enqueued_at = now() - interval '1 minute', last_enqueued_at = now() - interval '1 minute' where object_type = 'contact';
select keapsync.enqueue_push('71000000-0000-4000-8000-000000000007', 'contact', 1, '0/15');
select is((select last_lsn from keapsync.push_queue where object_type = 'contact' and local_id = 1), '0/20'::pg_lsn,
  'an older LSN does not move it back');
select ok((select next_attempt_at <= now() from keapsync.push_queue where object_type = 'contact' and local_id = 1),
  'a new change makes a backed-off record due');
select ok((select first_enqueued_at < now() - interval '30 seconds' and last_enqueued_at = now()
             from keapsync.push_queue where object_type = 'contact' and local_id = 1),
  'a new change keeps when the record first changed and notes when it last did (hot rows rest longer)');
select is(keapsync.enqueue_pushes(null, null, null, null), 0, 'nothing to enqueue');
select is((select count(*)::int from keapsync.push_queue), 2, 'still one row per record');


-- What the stream may not have carried (changes made before the slot existed).
delete from keapsync.push_queue;
select keapsync.apply_keap_record('71000000-0000-4000-8000-000000000007', 'contact',
         jsonb_build_object('id', k, 'given_name', n, 'last_updated', '2026-02-01T00:00:00Z'))
  from (values (901, 'Keap only'), (902, 'Edited here'), (903, 'Edited, pushed'), (904, 'Parked')) v(k, n);
select keapsync.set_origin('local');  -- the applies set 'keap' for the transaction
update keap.contacts set job_title = 'x' where keap_id in (902, 903, 904);
insert into keap.contacts (account_id, given_name) values ('71000000-0000-4000-8000-000000000007', 'Created here');
insert into keap.tags (account_id, keap_id, name) values ('71000000-0000-4000-8000-000000000007', 905, 'Off type');
update keapsync.sync_state set last_pushed_at = now() + interval '1 second'
 where local_id = (select id from keap.contacts where keap_id = 903);
insert into keapsync.dead_letters (account_id, source, object_type, local_id, error)
select account_id, 'push', 'contact', id, 'refused' from keap.contacts where keap_id = 904;
update keapsync.sync_directions set direction = 'keap_to_postgres'
 where account_id = '71000000-0000-4000-8000-000000000007' and object_type = 'tag';
select is(keapsync.enqueue_unstreamed(), 2, 'two records have local changes not yet pushed');
select set_eq($$select coalesce(c.given_name, '') from keapsync.push_queue q join keap.contacts c on c.id = q.local_id$$,
  array['Edited here', 'Created here'],
  'queued: the local edit and the local create; not Keap''s own record, the pushed edit, the parked one, a Keap-only type');

select * from finish();
rollback;
