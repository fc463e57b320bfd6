-- Applying Keap records: idempotence, Keap's clock, the three-way field merge under every policy,
-- custom fields, tags, deletes, and the push hand-off (pending_push / mark_pushed).
begin;
create extension if not exists pgtap;
select plan(78);

insert into keapsync.accounts (id, name) values ('10000000-0000-4000-8000-000000000001', 'A');
insert into keapsync.settings (account_id, default_policy) values ('10000000-0000-4000-8000-000000000001', 'newest_wins');

-- A Keap contact as the API returns it, at a given version.
create function pg_temp.contact(p_id bigint, p_updated text, p_extra jsonb default '{}') returns jsonb
language sql as $$
  select jsonb_build_object(
    'id', p_id, 'given_name', 'Ada', 'family_name', 'Lovelace',
    'email_addresses', jsonb_build_array(jsonb_build_object('email', 'ada@example.com', 'field', 'EMAIL1')),
    'phone_numbers', jsonb_build_array(jsonb_build_object('number', '555-0100', 'field', 'PHONE1')),
    'company', jsonb_build_object('company_name', 'Analytical Engines'),
    'custom_fields', jsonb_build_array(jsonb_build_object('id', 7, 'content', 'Gold')),
    'tag_ids', jsonb_build_array(101),
    'email_status', 'SingleOptIn', 'date_created', '2026-01-01T00:00:00.000Z',
    'last_updated', p_updated) || p_extra;
$$;
create function pg_temp.apply(p_raw jsonb) returns text language sql as $$
  select keapsync.apply_keap_record('10000000-0000-4000-8000-000000000001', 'contact', p_raw);
$$;
create function pg_temp.row_of(p_keap_id bigint) returns keap.contacts language sql as $$
  select * from keap.contacts where keap_id = p_keap_id;
$$;
create function pg_temp.local_edit(p_keap_id bigint, p_sql text) returns void language plpgsql as $$
begin
  perform keapsync.set_origin('local');
  execute p_sql using p_keap_id;
end;
$$;

-- ---- insert, duplicate, stale, no-op ------------------------------------------------------------
select is(pg_temp.apply(pg_temp.contact(1, '2026-03-01T10:00:00.123Z')), 'inserted', 'new Keap record is inserted');
select is((pg_temp.row_of(1)).email, 'ada@example.com', 'primary email lands in its column');
select is((pg_temp.row_of(1)).company_name, 'Analytical Engines', 'company name is flattened');
select is((pg_temp.row_of(1)).custom_fields, '{"7": "Gold"}'::jsonb, 'custom fields keyed by Keap field id');
select is((pg_temp.row_of(1)).sync_origin, 'keap', 'a row written for Keap is marked as Keap''s');
select is((select count(*) from keap.contact_tags ct join keap.tags t on t.id = ct.tag_id where t.keap_id = 101)::int, 1,
          'tag ids become contact_tags rows (with a placeholder tag)');
select is((pg_temp.row_of(1)).last_updated, '2026-03-01 10:00:00.123+00'::timestamptz, 'Keap''s clock kept to the millisecond');

create temp table snap as select xmin::text as x, version from keap.contacts where keap_id = 1;
select is(pg_temp.apply(pg_temp.contact(1, '2026-03-01T10:00:00.123Z')), 'duplicate', 'the same version again is a duplicate');
select is(pg_temp.apply(pg_temp.contact(1, '2026-03-01T09:59:59.999Z', '{"given_name": "Old"}')), 'stale',
          'an older version (by Keap''s clock) is ignored');
select is((select xmin::text from keap.contacts where keap_id = 1), (select x from snap), 'duplicate and stale write no row version');
select is((pg_temp.row_of(1)).given_name, 'Ada', 'the stale value did not land');
select is(pg_temp.apply(pg_temp.contact(1, '2026-03-01T10:00:00.123+0000')), 'duplicate', '+0000 offsets read like Z');

-- ---- Keap-only change ------------------------------------------------------------------------------
select is(pg_temp.apply(pg_temp.contact(1, '2026-03-02T10:00:00.000Z', '{"job_title": "Countess"}')), 'updated', 'Keap-only change applies');
select is((pg_temp.row_of(1)).job_title, 'Countess', 'Keap''s new value is in the row');
select is(keapsync.pending_push('10000000-0000-4000-8000-000000000001', 'contact', (pg_temp.row_of(1)).id) ->> 'op', 'none',
          'nothing to push after a Keap-only change (no echo)');

-- ---- local-only change ----------------------------------------------------------------------------
select pg_temp.local_edit(1, 'update keap.contacts set phone = ''555-0199'' where keap_id = $1');
select is((pg_temp.row_of(1)).sync_origin, 'local', 'a plain SQL edit is marked local');
select is(keapsync.pending_push('10000000-0000-4000-8000-000000000001', 'contact', (pg_temp.row_of(1)).id),
          '{"op": "update", "keap_id": 1, "fields": {"phone": "555-0199"}, "cleared": []}'::jsonb,
          'the local edit is pending push, alone');
select is(pg_temp.apply(pg_temp.contact(1, '2026-03-03T10:00:00.000Z', '{"job_title": "Countess"}')), 'unchanged',
          'a newer Keap version without that field changed keeps the local value');
select is((pg_temp.row_of(1)).phone, '555-0199', 'local-only change survives the apply');

-- ---- both changed to the same value -----------------------------------------------------------------
select pg_temp.local_edit(1, 'update keap.contacts set job_title = ''Mathematician'' where keap_id = $1');
select is(pg_temp.apply(pg_temp.contact(1, '2026-03-04T10:00:00.000Z',
          '{"job_title": "Mathematician", "phone_numbers": [{"number": "555-0199", "field": "PHONE1"}]}')), 'unchanged',
          'both sides changed to the same values');
select is(keapsync.pending_push('10000000-0000-4000-8000-000000000001', 'contact', (pg_temp.row_of(1)).id) ->> 'op', 'none',
          'same value on both sides is agreed: nothing to push');
select is((select count(*) from keapsync.conflicts)::int, 0, 'and no conflict');

-- ---- both changed, different values, each policy ------------------------------------------------
-- newest_wins, Keap newer: the local edit happened "before" Keap's version.
select pg_temp.local_edit(1, 'update keap.contacts set given_name = ''Augusta'' where keap_id = $1');
update keapsync.sync_state set local_changed_at = jsonb_set(local_changed_at, '{given_name}', '"2026-03-05T00:00:00Z"')
 where keap_id = 1;
select is(pg_temp.apply(pg_temp.contact(1, '2026-03-05T10:00:00.000Z',
          '{"given_name": "Ada K.", "job_title": "Mathematician", "phone_numbers": [{"number": "555-0199", "field": "PHONE1"}]}')),
          'updated', 'conflicting apply under newest_wins');
select is((pg_temp.row_of(1)).given_name, 'Ada K.', 'newest_wins: Keap''s newer value wins');
select is((select resolution from keapsync.conflicts where field = 'given_name'), 'keap', 'the auto-resolved conflict is recorded');

-- newest_wins, local newer.
select pg_temp.local_edit(1, 'update keap.contacts set given_name = ''Augusta Ada'' where keap_id = $1');
update keapsync.sync_state set local_changed_at = jsonb_set(local_changed_at, '{given_name}', '"2026-03-07T00:00:00Z"')
 where keap_id = 1;
select pg_temp.apply(pg_temp.contact(1, '2026-03-06T10:00:00.000Z',
       '{"given_name": "A. K.", "job_title": "Mathematician", "phone_numbers": [{"number": "555-0199", "field": "PHONE1"}]}'));
select is((pg_temp.row_of(1)).given_name, 'Augusta Ada', 'newest_wins: the newer local value wins');
select is(keapsync.pending_push('10000000-0000-4000-8000-000000000001', 'contact', (pg_temp.row_of(1)).id) -> 'fields',
          '{"given_name": "Augusta Ada"}'::jsonb, 'and is pending push against Keap''s value');

-- keap_wins.
insert into keapsync.conflict_policies (account_id, object_type, field, policy)
values ('10000000-0000-4000-8000-000000000001', 'contact', 'family_name', 'keap_wins'),
       ('10000000-0000-4000-8000-000000000001', 'contact', 'locality', 'local_wins'),
       ('10000000-0000-4000-8000-000000000001', 'contact', 'region', 'manual');
select pg_temp.local_edit(1, 'update keap.contacts set family_name = ''King'', locality = ''London'', region = ''LDN'' where keap_id = $1');
select is(pg_temp.apply(pg_temp.contact(1, '2026-03-08T10:00:00.000Z',
          '{"given_name": "A. K.", "family_name": "Byron", "job_title": "Mathematician",
            "phone_numbers": [{"number": "555-0199", "field": "PHONE1"}],
            "addresses": [{"field": "BILLING", "locality": "Ockham", "region": "SRY"}]}')),
          'updated', 'apply with three conflicting fields');
select is((pg_temp.row_of(1)).family_name, 'Byron', 'keap_wins takes Keap''s value');
select is((pg_temp.row_of(1)).locality, 'London', 'local_wins keeps ours');
select is((pg_temp.row_of(1)).region, 'LDN', 'manual keeps ours in the row for now');
select is((select status from keapsync.conflicts where field = 'region'), 'open', 'manual parks the field as an open conflict');
select is((select keap_value from keapsync.conflicts where field = 'region'), '"SRY"'::jsonb, 'with Keap''s value beside it');
select is((select base_value from keapsync.conflicts where field = 'region'), null, 'and the agreed base (none)');
select is(keapsync.pending_push('10000000-0000-4000-8000-000000000001', 'contact', (pg_temp.row_of(1)).id) -> 'fields',
          '{"given_name": "Augusta Ada", "locality": "London"}'::jsonb,
          'pending push: local_wins field yes, manual field no (parked), keap_wins field no');
select is((select count(*) from keapsync.conflicts where status = 'open')::int, 1, 'only the manual field is parked');

-- A newer Keap value for a parked field refreshes the conflict instead of adding one.
select pg_temp.apply(pg_temp.contact(1, '2026-03-09T10:00:00.000Z',
       '{"given_name": "A. K.", "family_name": "Byron", "job_title": "Mathematician",
         "phone_numbers": [{"number": "555-0199", "field": "PHONE1"}],
         "addresses": [{"field": "BILLING", "locality": "Ockham", "region": "SUR"}]}'));
select is((select keap_value from keapsync.conflicts where field = 'region' and status = 'open'), '"SUR"'::jsonb,
          'the open conflict carries Keap''s newest value');
select is((select count(*) from keapsync.conflicts where field = 'region')::int, 1, 'still one conflict for the field');

-- ---- push hand-off ------------------------------------------------------------------------------
select is(keapsync.mark_pushed('10000000-0000-4000-8000-000000000001', 'contact', (pg_temp.row_of(1)).id,
          '{"given_name": "Augusta Ada", "locality": "London"}',
          pg_temp.contact(1, '2026-03-10T10:00:00.000Z',
            '{"given_name": "Augusta Ada", "family_name": "Byron", "job_title": "Mathematician",
              "phone_numbers": [{"number": "555-0199", "field": "PHONE1"}],
              "addresses": [{"field": "BILLING", "locality": "London", "region": "SUR"}]}')),
          'unchanged', 'marking a push done applies Keap''s answer as a no-op');
select is(keapsync.pending_push('10000000-0000-4000-8000-000000000001', 'contact', (pg_temp.row_of(1)).id) -> 'fields',
          '{}'::jsonb, 'nothing left to push but the parked field');
select is(pg_temp.apply(pg_temp.contact(1, '2026-03-10T10:00:00.000Z',
            '{"given_name": "Augusta Ada", "family_name": "Byron", "job_title": "Mathematician",
              "phone_numbers": [{"number": "555-0199", "field": "PHONE1"}],
              "addresses": [{"field": "BILLING", "locality": "London", "region": "SUR"}]}')), 'duplicate',
          'the hook for our own push (Keap''s same version) is a duplicate: no echo, no write');

-- A local edit made while the push was in flight stays pending.
select pg_temp.local_edit(1, 'update keap.contacts set job_title = ''Poet'' where keap_id = $1');
select keapsync.mark_pushed('10000000-0000-4000-8000-000000000001', 'contact', (pg_temp.row_of(1)).id,
       '{"job_title": "Analyst"}',
       pg_temp.contact(1, '2026-03-11T10:00:00.000Z',
         '{"given_name": "Augusta Ada", "family_name": "Byron", "job_title": "Analyst",
           "phone_numbers": [{"number": "555-0199", "field": "PHONE1"}],
           "addresses": [{"field": "BILLING", "locality": "London", "region": "SUR"}]}'));
select is((pg_temp.row_of(1)).job_title, 'Poet', 'an edit made during the push is kept');
select is(keapsync.pending_push('10000000-0000-4000-8000-000000000001', 'contact', (pg_temp.row_of(1)).id) -> 'fields',
          '{"job_title": "Poet"}'::jsonb, 'and is pending, not a conflict');

-- A Keap edit newer than ours, merged in while our PATCH was out, wins the field here; Keap then
-- takes the PATCH and answers with our value. The record is queued again, so the merge's choice
-- reaches Keap (it used to be agreed away: Keap kept ours, Postgres Keap's, for good).
select pg_temp.apply(pg_temp.contact(5, '2026-03-20T10:00:00.000Z'));
select pg_temp.local_edit(5, 'update keap.contacts set job_title = ''L84'' where keap_id = $1');
select pg_temp.apply(pg_temp.contact(5, '2099-01-01T10:00:00.000Z', '{"job_title": "K370"}'));
select is((pg_temp.row_of(5)).job_title, 'K370', 'the newer Keap edit wins the field while our PATCH is out');
select keapsync.mark_pushed('10000000-0000-4000-8000-000000000001', 'contact', (pg_temp.row_of(5)).id,
       '{"job_title": "L84"}', pg_temp.contact(5, '2099-01-01T10:00:00.000Z', '{"job_title": "L84"}'));
select is((pg_temp.row_of(5)).job_title, 'K370', 'the PATCH''s answer does not undo the merge');
select is(keapsync.pending_push('10000000-0000-4000-8000-000000000001', 'contact', (pg_temp.row_of(5)).id) -> 'fields',
          '{"job_title": "K370"}'::jsonb, 'the merge''s choice is pending');
select is((select count(*) from keapsync.push_queue where local_id = (pg_temp.row_of(5)).id)::int, 1,
          'and queued, though no change in the stream carries it');
select mark_pushed is not null from (select keapsync.mark_pushed('10000000-0000-4000-8000-000000000001', 'contact', (pg_temp.row_of(5)).id,
       '{"job_title": "K370"}', pg_temp.contact(5, '2099-01-01T10:00:01.000Z', '{"job_title": "K370"}'))) m;
select is((select changes from keapsync.push_queue where local_id = (pg_temp.row_of(5)).id)::int, 1,
          'pushing it queues nothing more (the queue row is the worker''s to remove)');
select is(keapsync.pending_push('10000000-0000-4000-8000-000000000001', 'contact', (pg_temp.row_of(5)).id) ->> 'op',
          'none', 'and leaves nothing to push');

-- ---- custom fields and tags merge key by key ------------------------------------------------
select pg_temp.local_edit(1, 'update keap.contacts set custom_fields = custom_fields || ''{"8": "local"}'' where keap_id = $1');
select pg_temp.apply(pg_temp.contact(1, '2026-03-12T10:00:00.000Z',
       '{"given_name": "Augusta Ada", "family_name": "Byron", "job_title": "Analyst",
         "phone_numbers": [{"number": "555-0199", "field": "PHONE1"}],
         "addresses": [{"field": "BILLING", "locality": "London", "region": "SUR"}],
         "custom_fields": [{"id": 7, "content": "Platinum"}], "tag_ids": [101, 102]}'));
select is((pg_temp.row_of(1)).custom_fields, '{"7": "Platinum", "8": "local"}'::jsonb,
          'Keap''s custom field change and our new custom field both stand');
select is((select array_agg(t.keap_id order by t.keap_id) from keap.contact_tags ct join keap.tags t on t.id = ct.tag_id
            where ct.contact_id = (pg_temp.row_of(1)).id), array[101, 102]::bigint[], 'a tag applied in Keap is applied here');
select pg_temp.apply(pg_temp.contact(1, '2026-03-13T10:00:00.000Z',
       '{"given_name": "Augusta Ada", "family_name": "Byron", "job_title": "Analyst",
         "phone_numbers": [{"number": "555-0199", "field": "PHONE1"}],
         "addresses": [{"field": "BILLING", "locality": "London", "region": "SUR"}]}') - 'custom_fields' - 'tag_ids');
select is((pg_temp.row_of(1)).custom_fields, '{"7": "Platinum", "8": "local"}'::jsonb,
          'an object fetched without custom fields does not remove them');
select is((select count(*) from keap.contact_tags where contact_id = (pg_temp.row_of(1)).id)::int, 2,
          'an object fetched without tag ids does not remove tags');
select is((pg_temp.row_of(1)).job_title, 'Poet',
          'an object fetched without job_title (an optional property) does not clear it');
select pg_temp.local_edit(1, 'delete from keap.contact_tags ct using keap.tags t where t.id = ct.tag_id and t.keap_id = 102 and ct.contact_id = (select id from keap.contacts where keap_id = $1)');
select is(keapsync.pending_push('10000000-0000-4000-8000-000000000001', 'contact', (pg_temp.row_of(1)).id),
          '{"op": "update", "keap_id": 1, "fields": {"custom_fields.8": "local", "job_title": "Poet"}, "cleared": ["tag.102"]}'::jsonb,
          'a tag removed locally is pending as a cleared tag key');

-- ---- creates and deletes ---------------------------------------------------------------------------
select pg_temp.local_edit(null, 'insert into keap.contacts (account_id, given_name, email) values (''10000000-0000-4000-8000-000000000001'', ''Grace'', ''grace@example.com'')');
select is(keapsync.pending_push('10000000-0000-4000-8000-000000000001', 'contact', (select id from keap.contacts where email = 'grace@example.com')),
          '{"op": "create", "keap_id": null, "fields": {"email": "grace@example.com", "given_name": "Grace"}, "cleared": []}'::jsonb,
          'a row inserted locally is pending create');
select is(keapsync.mark_pushed('10000000-0000-4000-8000-000000000001', 'contact', (select id from keap.contacts where email = 'grace@example.com'),
          '{"email": "grace@example.com", "given_name": "Grace"}',
          '{"id": 2, "given_name": "Grace", "email_addresses": [{"email": "grace@example.com", "field": "EMAIL1"}], "last_updated": "2026-03-14T00:00:00.000Z"}'),
          'unchanged', 'marking the create done');
select is((select keap_id from keap.contacts where email = 'grace@example.com'), 2::bigint, 'the Keap id is written back');
select is((select sync_origin from keap.contacts where email = 'grace@example.com'), 'keap', 'the write-back is not an edit to push');

-- A create whose write-back was lost, and whose Keap record a hook imported meanwhile: the
-- retry's mark_pushed keeps our row and drops the imported twin.
select pg_temp.local_edit(null, 'insert into keap.contacts (account_id, given_name, email) values (''10000000-0000-4000-8000-000000000001'', ''Twin'', ''twin@example.com'')');
select pg_temp.apply('{"id": 60, "given_name": "Twin", "email_addresses": [{"email": "twin@example.com", "field": "EMAIL1"}], "last_updated": "2026-03-14T00:00:00.000Z"}');
select is((select count(*) from keap.contacts where email = 'twin@example.com')::int, 2, 'the hook imported our own create as a second row');
select lives_ok($$select keapsync.mark_pushed('10000000-0000-4000-8000-000000000001', 'contact',
          (select id from keap.contacts where email = 'twin@example.com' and keap_id is null),
          '{"email": "twin@example.com", "given_name": "Twin"}',
          '{"id": 60, "given_name": "Twin", "email_addresses": [{"email": "twin@example.com", "field": "EMAIL1"}], "last_updated": "2026-03-14T00:00:00.000Z"}')$$,
          'marking the retried create done does not trip over the twin');
select is((select count(*) from keap.contacts where email = 'twin@example.com')::int, 1, 'one row is left');
select is((select count(*) from keapsync.webhook_inbox where event_key = 'contact.recheck' and object_ids = array[60::bigint]
            and processed_at is null)::int, 1, 'and Keap''s record is read again (the twin may hold a newer Keap edit)');
select is((select count(*) from keapsync.sync_state where keap_id = 60)::int, 1, 'with one sync state');

select is(keapsync.apply_keap_delete('10000000-0000-4000-8000-000000000001', 'contact', 2), 'deleted', 'Keap deleted it: gone here');
select is((select count(*) from keapsync.sync_state where keap_id = 2)::int, 0, 'with its sync state');
select is((select op from keapsync.change_history where keap_id = 2 order by id desc limit 1), 'delete', 'and the history keeps it');
select is(keapsync.apply_keap_delete('10000000-0000-4000-8000-000000000001', 'contact', 2), 'absent', 'deleting twice is harmless');

-- Local delete, not propagated (the default): the record just stops syncing here.
select pg_temp.apply(pg_temp.contact(3, '2026-03-01T00:00:00.000Z'));
select pg_temp.local_edit(3, 'delete from keap.contacts where keap_id = $1');
select is((select count(*) from keapsync.sync_state where keap_id = 3)::int, 0, 'unpropagated local delete drops the sync state');
-- Propagated: the delete is pending push and beats a later Keap edit.
update keapsync.settings set propagate_deletes = true where account_id = '10000000-0000-4000-8000-000000000001';
select pg_temp.apply(pg_temp.contact(4, '2026-03-01T00:00:00.000Z'));
create temp table gone as select id from keap.contacts where keap_id = 4;
select pg_temp.local_edit(4, 'delete from keap.contacts where keap_id = $1');
select is(keapsync.pending_push('10000000-0000-4000-8000-000000000001', 'contact', (select id from gone)) ->> 'op', 'delete',
          'a propagated local delete is pending push');
select is(pg_temp.apply(pg_temp.contact(4, '2026-03-02T00:00:00.000Z')), 'deleted_locally', 'a Keap edit does not resurrect it');
select is(keapsync.mark_pushed('10000000-0000-4000-8000-000000000001', 'contact', (select id from gone), null, null), 'deleted',
          'marking the delete done');

-- ---- other object types ---------------------------------------------------------------------------
select is(keapsync.apply_keap_record('10000000-0000-4000-8000-000000000001', 'order',
          '{"id": 77, "title": "Order 77", "contact": {"id": "1"}, "total": "149.5", "order_date": "2026-03-01T00:00:00.000+0000",
            "modification_date": "2026-03-01T00:00:01.000Z"}'), 'inserted', 'orders apply (ids as strings, totals as strings)');
select is((select total from keap.orders where keap_id = 77), 149.50::numeric, 'order total typed');
select is(keapsync.apply_keap_record('10000000-0000-4000-8000-000000000001', 'order',
          '{"id": 77, "title": "Order 77 old", "modification_date": "2026-03-01T00:00:00.000Z"}'), 'stale',
          'orders are ordered by modification_date');
select is(keapsync.apply_keap_record('10000000-0000-4000-8000-000000000001', 'subscription',
          '{"id": 9, "contact_id": 1, "active": true, "billing_amount": 49, "billing_cycle": "MONTH", "modification_time": null}'),
          'inserted', 'subscriptions apply (null for absent)');
select throws_ok($$select keapsync.apply_keap_record('10000000-0000-4000-8000-000000000001', 'contact', '{"given_name": "x"}')$$,
          '22023', null, 'a record without an id is refused with a clear error');
select throws_ok($$select keapsync.apply_keap_record('10000000-0000-4000-8000-000000000001', 'widget', '{"id": 1}')$$,
          '22023', null, 'an unknown object type is refused');

select * from finish();
rollback;
