-- Companies, read and pushed through the registry's keap_paths: apply, field conflicts, what a
-- push sends (a nested address is sent whole), and deletes Keap's API allows.
begin;
create extension if not exists pgtap;
select plan(8);

insert into keapsync.accounts (id, name) values ('c0000000-0000-4000-8000-000000000001', 'C');
insert into keapsync.settings (account_id, default_policy) values ('c0000000-0000-4000-8000-000000000001', 'manual');

select is(keapsync.apply_keap_record('c0000000-0000-4000-8000-000000000001', 'company',
  '{"id": "5", "company_name": "Acme", "email_address": {"email": "hi@acme.io"}, "website": "https://acme.io",
    "address": {"line1": "1 Main", "locality": "Mesa", "postal_code": "85201"}, "update_time": "2026-01-01T00:00:00.000Z"}'),
  'inserted', 'a Keap company arrives');
select is((select row(company_name, email, locality, postal_code, update_time)::text from keap.companies where keap_id = 5),
          row('Acme', 'hi@acme.io', 'Mesa', '85201', '2026-01-01 00:00:00+00'::timestamptz)::text, 'its columns, read by keap_paths');
select is(keapsync.apply_keap_record('c0000000-0000-4000-8000-000000000001', 'company',
  '{"id": "5", "company_name": "Acme", "update_time": "2025-01-01T00:00:00.000Z"}'), 'stale', 'an older version is ignored');
select set_config('keapsync.origin', '', true);

update keap.companies set region = 'AZ', company_name = 'Acme Local' where keap_id = 5;
select is(keapsync.push_request('c0000000-0000-4000-8000-000000000001', 'company', (select id from keap.companies where keap_id = 5)) -> 'update_mask',
          '["address", "company_name"]'::jsonb, 'the update mask names the changed properties');
select is(keapsync.push_request('c0000000-0000-4000-8000-000000000001', 'company', (select id from keap.companies where keap_id = 5)) -> 'body' -> 'address',
          '{"line1": "1 Main", "locality": "Mesa", "postal_code": "85201", "region": "AZ"}'::jsonb, 'an address is sent whole');

select is(keapsync.apply_keap_record('c0000000-0000-4000-8000-000000000001', 'company',
  '{"id": "5", "company_name": "Acme Keap", "email_address": {"email": "hi@acme.io"}, "website": "https://acme.io",
    "address": {"line1": "1 Main", "locality": "Mesa", "postal_code": "85201"}, "update_time": "2026-01-02T00:00:00.000Z"}'),
  'updated', 'Keap changes the name too');
select is((select field || ':' || (local_value #>> '{}') || '/' || (keap_value #>> '{}') from keapsync.conflicts
            where object_type = 'company' and status = 'open'),
          'company_name:Acme Local/Acme Keap', 'both changed the name: a conflict for that field only');

select set_config('keapsync.origin', '', true);
insert into keapsync.settings (account_id, propagate_deletes) values ('c0000000-0000-4000-8000-000000000001', true)
  on conflict (account_id) do update set propagate_deletes = true;
create temp table gone as select id from keap.companies where keap_id = 5;
delete from keap.companies where keap_id = 5;
select is(keapsync.push_request('c0000000-0000-4000-8000-000000000001', 'company', (select id from gone)) ->> 'op',
          'delete', 'a local delete is sent: Keap''s v2 API can delete companies');

select * from finish();
rollback;
