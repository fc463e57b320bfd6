-- The push queue's set-based enqueue: duplicates in one call coalesce, the newest LSN is kept,
-- a re-enqueue makes a backed-off record due again and notes when it came, and enqueue_push is
-- the same rule.
begin;
create extension if not exists pgtap;
select plan(7);

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

select * from finish();
rollback;
