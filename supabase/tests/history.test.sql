-- What change_history records for each origin and operation. Keap's inserts and deletes take a
-- shorter path than local changes (straight from the transition table); both must write the same
-- shape: the row's data without bookkeeping columns in `changed`, the old row (without
-- keap_object) for deletes, and the contact's Keap id on tag links.
begin;
create extension if not exists pgtap;
select plan(16);

insert into keapsync.accounts (id, name) values ('20000000-0000-4000-8000-000000000002', 'H');

create function pg_temp.last(p_table text, p_op text, p_origin text) returns keapsync.change_history
language sql as $$
  select * from keapsync.change_history
   where table_name = p_table and op = p_op and origin = p_origin order by id desc limit 1;
$$;

-- ---- Keap's insert of a contact and its tag link ---------------------------------------------
select keapsync.set_origin('keap');
insert into keap.tags (account_id, keap_id, name) values ('20000000-0000-4000-8000-000000000002', 501, 'VIP');
insert into keap.contacts (account_id, keap_id, given_name, email, custom_fields, keap_object)
values ('20000000-0000-4000-8000-000000000002', 77, 'Grace', 'grace@example.com', '{"3": "blue"}', '{"id": 77}');
insert into keap.contact_tags (account_id, contact_id, tag_id)
select c.account_id, c.id, t.id from keap.contacts c, keap.tags t where c.keap_id = 77 and t.keap_id = 501;

select is((pg_temp.last('contacts', 'insert', 'keap')).changed,
  (select jsonb_build_object('id', id, 'account_id', account_id, 'keap_id', 77, 'given_name', 'Grace',
     'email', 'grace@example.com', 'custom_fields', '{"3": "blue"}'::jsonb) from keap.contacts where keap_id = 77),
  'a Keap insert records the row''s data, without nulls, bookkeeping or keap_object');
select is((pg_temp.last('contacts', 'insert', 'keap')).keap_id, 77::bigint, 'with its Keap id');
select is((pg_temp.last('contacts', 'insert', 'keap')).row_id, (select id from keap.contacts where keap_id = 77),
  'and its local id');
select ok((pg_temp.last('contacts', 'insert', 'keap')).old_row is null
      and (pg_temp.last('contacts', 'insert', 'keap')).new_row is null, 'an insert keeps no old or new row');
select is((pg_temp.last('contact_tags', 'insert', 'keap')).keap_id, 77::bigint,
  'a Keap tag link is recorded under the contact''s Keap id');
select is((pg_temp.last('contact_tags', 'insert', 'keap')).row_id, (select id from keap.contacts where keap_id = 77),
  'and the contact''s local id');
select is((pg_temp.last('contact_tags', 'insert', 'keap')).changed ->> 'tag_id',
  (select id::text from keap.tags where keap_id = 501), 'naming the tag');

-- ---- Keap's delete: the contact and, by cascade, its tag link ----------------------------------
delete from keap.contacts where keap_id = 77;
select is((pg_temp.last('contacts', 'delete', 'keap')).old_row - 'id' - 'account_id' - 'created_at' - 'updated_at',
  '{"keap_id": 77, "given_name": "Grace", "email": "grace@example.com", "custom_fields": {"3": "blue"},
    "middle_name": null, "family_name": null, "email_status": null, "email_opted_in": null, "phone": null,
    "company_name": null, "job_title": null, "address_line1": null, "address_line2": null, "locality": null,
    "region": null, "postal_code": null, "country_code": null, "owner_id": null, "lead_source_id": null, "email_opt_in_reason": null, "company_keap_id": null,
    "date_created": null, "last_updated": null, "sync_origin": "keap", "version": 1}'::jsonb,
  'a Keap delete keeps the whole old row but keap_object');
select is((pg_temp.last('contacts', 'delete', 'keap')).changed ->> 'given_name', 'Grace',
  'and its data as the change');
select ok(not ((pg_temp.last('contacts', 'delete', 'keap')).changed ? 'version'), 'without bookkeeping columns');
select is((select count(*)::int from keapsync.change_history where table_name = 'contact_tags' and op = 'delete'),
  1, 'the cascaded tag link delete is recorded too');

-- ---- the same shapes from a local insert, update and delete --------------------------------------
select keapsync.set_origin('local');
insert into keap.contacts (account_id, given_name, email) values ('20000000-0000-4000-8000-000000000002', 'Alan', 'alan@example.com');
select is((pg_temp.last('contacts', 'insert', 'local')).changed - 'id' - 'account_id',
  '{"given_name": "Alan", "email": "alan@example.com", "custom_fields": {}}'::jsonb,
  'a local insert records the same shape');
update keap.contacts set given_name = 'Alan M.' where email = 'alan@example.com';
select is((pg_temp.last('contacts', 'update', 'local')).changed,
  '{"given_name": {"old": "Alan", "new": "Alan M."}}'::jsonb, 'a local update records old and new per column');
select is((pg_temp.last('contacts', 'update', 'local')).new_row ->> 'given_name', 'Alan M.', 'and the new row');
delete from keap.contacts where email = 'alan@example.com';
select is((pg_temp.last('contacts', 'delete', 'local')).old_row ->> 'given_name', 'Alan M.', 'a local delete keeps the old row');
select ok(not ((pg_temp.last('contacts', 'delete', 'local')).old_row ? 'keap_object'), 'without keap_object');

select * from finish();
rollback;
