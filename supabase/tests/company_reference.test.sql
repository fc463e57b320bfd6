-- A contact's company is a real reference (a foreign key), and a contact never waits for its
-- company: contact first then company, company first, the company deleted, another account's
-- company with the same Keap id, a local write naming a company that is not here.
begin;
create extension if not exists pgtap;
select plan(12);

insert into keapsync.accounts (id, name) values
  ('c1000000-0000-4000-8000-000000000001', 'A'), ('c1000000-0000-4000-8000-000000000002', 'B');

select ok(exists (select 1 from pg_constraint where conname = 'contacts_company_fkey' and contype = 'f'
                     and conrelid = 'keap.contacts'::regclass and confrelid = 'keap.companies'::regclass),
          'contacts.company_keap_id is a foreign key to companies');

-- Contact first: stored at once, linked to nothing, Keap's id kept in its object.
select is(keapsync.apply_keap_record('c1000000-0000-4000-8000-000000000001', 'contact',
  '{"id": 1, "given_name": "Early", "company": {"id": 7, "company_name": "Acme"}, "last_updated": "2026-01-01T00:00:00Z"}'),
  'inserted', 'a contact whose company is not here yet arrives');
select is((select row(company_keap_id, keap_object -> 'company' ->> 'id', company_name)::text from keap.contacts where keap_id = 1),
          row(null::bigint, '7', 'Acme')::text, 'its link waits; Keap''s id stays in its object');

-- Another account's company with the same Keap id never links it.
select is(keapsync.apply_keap_record('c1000000-0000-4000-8000-000000000002', 'company',
  '{"id": 7, "company_name": "Other", "update_time": "2026-01-01T00:00:00Z"}'), 'inserted', 'account B stores its company 7');
select is((select company_keap_id from keap.contacts where keap_id = 1), null, 'another account''s company 7 does not link it');

-- Then the company: storing it links the contact.
select is(keapsync.apply_keap_record('c1000000-0000-4000-8000-000000000001', 'company',
  '{"id": 7, "company_name": "Acme", "update_time": "2026-01-01T00:00:00Z"}'), 'inserted', 'its company arrives');
select is((select c.company_keap_id from keap.contacts c where c.keap_id = 1), 7::bigint, 'the contact is linked to it');
select is((select count(*)::int from keap.contacts c join keap.companies co on co.id = (
             select id from keap.companies where account_id = c.account_id and keap_id = c.company_keap_id)
            where co.account_id = 'c1000000-0000-4000-8000-000000000001' and co.company_name = 'Acme'), 1,
          'and joins its own account''s company');

-- Company first: a contact naming it is linked as it arrives, in a page too.
select is(keapsync.apply_keap_page('c1000000-0000-4000-8000-000000000001', 'contact', array[
  '{"id": 2, "given_name": "Late", "company": {"id": 7}, "last_updated": "2026-01-01T00:00:00Z"}',
  '{"id": 3, "given_name": "Loner", "company": {"id": 8}, "last_updated": "2026-01-01T00:00:00Z"}']::jsonb[]) ->> 'inserted',
  '2', 'contacts arrive after their company');
select is((select array_agg(company_keap_id order by keap_id)::text from keap.contacts
            where account_id = 'c1000000-0000-4000-8000-000000000001'), '{7,7,NULL}', 'the one whose company is here is linked');

-- The company deleted in Keap: its contacts are unlinked, and nothing else about them changes.
select keapsync.apply_keap_delete('c1000000-0000-4000-8000-000000000001', 'company', 7);
select is((select array_agg(row(company_keap_id, keap_object -> 'company' ->> 'id', given_name)::text order by keap_id) from keap.contacts
            where account_id = 'c1000000-0000-4000-8000-000000000001' and keap_id in (1, 2)),
          array[row(null::bigint, '7', 'Early')::text, row(null::bigint, '7', 'Late')::text], 'a deleted company unlinks its contacts');

-- A local write naming a company that is not here is refused, with the foreign key's message.
select set_config('keapsync.origin', '', true);
select throws_ok($$update keap.contacts set company_keap_id = 99 where keap_id = 3$$, '23503', null,
                 'a local link to a company that is not here is refused');

select * from finish();
rollback;
