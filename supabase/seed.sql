-- Demo data: one Keap account with contacts, tags, orders and subscriptions, applied through the
-- function the sidecar's backfill uses (keapsync.apply_keap_page: so the rows are marked as
-- Keap's and nothing waits for push; it inserts new records in one statement, where
-- apply_keap_records merges them one by one, a sixth of the time for this seed), and a demo admin
-- user. Deterministic and safe to run again: applying the same Keap versions twice is a no-op.

insert into keapsync.accounts (id, name, keap_tenant)
values ('00000000-0000-4000-8000-0000000000de', 'Demo Company', 'demo.infusionsoft.com')
on conflict (id) do nothing;
insert into keapsync.settings (account_id) values ('00000000-0000-4000-8000-0000000000de')
on conflict (account_id) do nothing;

insert into auth.users (id, aud, role, email, raw_app_meta_data, raw_user_meta_data, created_at, updated_at)
values ('00000000-0000-4000-8000-00000000a11c', 'authenticated', 'authenticated', 'demo@keapsync.local',
        '{"provider": "email"}', '{}', now(), now())
on conflict (id) do nothing;
insert into keapsync.members (account_id, user_id, role)
values ('00000000-0000-4000-8000-0000000000de', '00000000-0000-4000-8000-00000000a11c', 'admin')
on conflict do nothing;

select keapsync.apply_keap_page('00000000-0000-4000-8000-0000000000de', 'tag_category',
  array['{"id": 1, "name": "Lifecycle", "description": "Where a contact is"}',
        '{"id": 2, "name": "Interest", "description": "What they asked about"}']::jsonb[]);

select keapsync.apply_keap_page('00000000-0000-4000-8000-0000000000de', 'tag',
  array(select jsonb_build_object('id', 100 + i, 'name', name, 'category', jsonb_build_object('id', cat))
     from (values (1, 'Lead', 1), (2, 'Customer', 1), (3, 'VIP', 1), (4, 'Newsletter', 2),
                  (5, 'Webinar', 2), (6, 'Pricing', 2)) t(i, name, cat)));

select keapsync.apply_keap_page('00000000-0000-4000-8000-0000000000de', 'contact',
  array(select jsonb_build_object(
      'id', 1000 + g,
      'given_name', (array['Ada','Grace','Alan','Edsger','Barbara','Donald','Frances','Ken','Margaret','Dennis'])[1 + g % 10],
      'family_name', (array['Lovelace','Hopper','Turing','Dijkstra','Liskov','Knuth','Allen','Thompson','Hamilton','Ritchie'])[1 + (g / 10) % 10],
      'email_addresses', jsonb_build_array(jsonb_build_object('email', 'contact' || g || '@example.com', 'field', 'EMAIL1')),
      'phone_numbers', jsonb_build_array(jsonb_build_object('number', '555-01' || lpad((g % 100)::text, 2, '0'), 'field', 'PHONE1')),
      'addresses', jsonb_build_array(jsonb_build_object('field', 'BILLING', 'line1', g || ' Main St',
                     'locality', (array['Phoenix','Austin','Denver','Boston'])[1 + g % 4], 'region', (array['AZ','TX','CO','MA'])[1 + g % 4],
                     'postal_code', lpad((85000 + g)::text, 5, '0'), 'country_code', 'USA')),
      'company', jsonb_build_object('company_name', (array['Acme','Globex','Initech','Umbrella','Hooli'])[1 + g % 5]),
      'job_title', (array['Owner','Manager','Engineer','Analyst'])[1 + g % 4],
      'owner_id', 1 + g % 3,
      'lead_source_id', 1 + g % 4,
      'email_status', 'SingleOptIn',
      'email_opted_in', g % 7 <> 0,
      'date_created', to_char(timestamptz '2026-01-05 09:00:00+00' + g * interval '7 hours', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
      'last_updated', to_char(timestamptz '2026-06-01 09:00:00+00' + g * interval '5 minutes', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
      'custom_fields', jsonb_build_array(jsonb_build_object('id', 7, 'content', (array['Gold','Silver','Bronze'])[1 + g % 3])),
      'tag_ids', (select jsonb_agg(101 + t) from generate_series(0, 5) t where (g + t) % 3 = 0))
     from generate_series(1, 1200) g));

select keapsync.apply_keap_page('00000000-0000-4000-8000-0000000000de', 'order',
  array(select jsonb_build_object(
      'id', 5000 + g, 'title', 'Order #' || (5000 + g), 'contact', jsonb_build_object('id', 1000 + (g * 7) % 1200 + 1),
      'status', case when g % 5 = 0 then 'SENT' else 'PAID' end, 'order_type', 'Online', 'source_type', 'API',
      'order_date', to_char(timestamptz '2026-01-10 12:00:00+00' + g * interval '9 hours', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
      'total', 49 + (g % 6) * 50, 'total_paid', case when g % 5 = 0 then 0 else 49 + (g % 6) * 50 end,
      'total_due', case when g % 5 = 0 then 49 + (g % 6) * 50 else 0 end,
      'creation_date', to_char(timestamptz '2026-01-10 12:00:00+00' + g * interval '9 hours', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
      'modification_date', to_char(timestamptz '2026-01-10 12:05:00+00' + g * interval '9 hours', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
     from generate_series(1, 800) g));

select keapsync.apply_keap_page('00000000-0000-4000-8000-0000000000de', 'subscription',
  array(select jsonb_build_object(
      'id', 9000 + g, 'contact_id', 1000 + (g * 11) % 1200 + 1, 'product_id', 1 + g % 3,
      'subscription_plan_id', 1 + g % 3, 'active', g % 6 <> 0,
      'billing_amount', (array[19, 49, 490])[1 + g % 3], 'billing_cycle', (array['MONTH', 'MONTH', 'YEAR'])[1 + g % 3],
      'billing_frequency', 1, 'quantity', 1, 'auto_charge', true,
      'start_date', to_char(date '2026-01-01' + g, 'YYYY-MM-DD'),
      'next_bill_date', to_char(date '2026-12-01' + g % 28, 'YYYY-MM-DD'),
      'modification_time', to_char(timestamptz '2026-02-01 08:00:00+00' + g * interval '1 hour', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
     from generate_series(1, 300) g));
