-- keapsync.account_state: one state per account, first match wins, readable by members of the
-- account only (RLS of the tables under it); keapsync.account_can_sync gates the work.
begin;
create extension if not exists pgtap;
select plan(15);

insert into auth.users (id, email) values ('a0000000-0000-4000-8000-0000000000f1', 'state@example.com');
insert into keapsync.accounts (id, name, keap_tenant, needs_reauth, paused, credential) values
  ('00000000-0000-4000-8000-0000000000f1', 'not connected', 'nc', false, false, 'oauth'),
  ('00000000-0000-4000-8000-0000000000f2', 'needs reauth', 'nr', true, false, 'oauth'),
  ('00000000-0000-4000-8000-0000000000f3', 'paused', 'pa', false, true, 'oauth'),
  ('00000000-0000-4000-8000-0000000000f4', 'failing', 'fa', false, false, 'oauth'),
  ('00000000-0000-4000-8000-0000000000f5', 'catching up', 'cu', false, false, 'oauth'),
  ('00000000-0000-4000-8000-0000000000f6', 'in sync', 'is', false, false, 'api_key');
insert into keapsync.members (account_id, user_id, role)
values ('00000000-0000-4000-8000-0000000000f4', 'a0000000-0000-4000-8000-0000000000f1', 'viewer');
insert into keapsync.oauth_tokens (account_id, key_id, ciphertext, last_error, updated_at)
select id, 'k', '\x00', case when needs_reauth then 'invalid_grant' end, '2026-12-01 00:00Z'
  from keapsync.accounts where keap_tenant in ('nr', 'pa', 'fa', 'cu');
insert into keapsync.sync_cursors (account_id, object_type, kind, rows_done, finished_at, updated_at)
select id, 'contact', 'backfill', 3, case when keap_tenant <> 'cu' then timestamptz '2026-12-01 01:00Z' end, '2026-12-01 01:00Z'
  from keapsync.accounts where keap_tenant <> 'nc';
insert into keapsync.sync_cursors (account_id, object_type, kind, last_error, failed_at)
values ('00000000-0000-4000-8000-0000000000f4', 'tag', 'reconcile', 'keap GET /v1/tags: 500', '2026-12-01 02:00Z');

select results_eq($$select keap_tenant, state from keapsync.account_state order by keap_tenant$$,
  $$values ('cu', 'catching_up'), ('fa', 'failing'), ('is', 'in_sync'), ('nc', 'not_connected'), ('nr', 'needs_reauth'), ('pa', 'paused')$$,
  'each account has the state its rows say');
select is((select reason from keapsync.account_state where keap_tenant = 'fa'), 'reconcile of tags: keap GET /v1/tags: 500',
  'failing says what failed');
select is((select since from keapsync.account_state where keap_tenant = 'fa'), '2026-12-01 02:00Z'::timestamptz,
  'failing says since when');
select is((select reason from keapsync.account_state where keap_tenant = 'cu'), 'backfill of contacts', 'catching up says with what');
select is((select reason from keapsync.account_state where keap_tenant = 'nr'), 'invalid_grant', 'needs re-auth keeps Keap''s word');
select is((select last_exchange_at from keapsync.account_state where keap_tenant = 'is'), '2026-12-01 01:00Z'::timestamptz,
  'in sync says when Keap last answered');
select is((select reason from keapsync.account_state where keap_tenant = 'is'), null, 'in sync needs no reason');
select results_eq($$select keap_tenant, keapsync.account_can_sync(account_id) from keapsync.account_state order by keap_tenant$$,
  $$values ('cu', true), ('fa', true), ('is', true), ('nc', false), ('nr', false), ('pa', false)$$,
  'only accounts that can sync get work');
select is(keapsync.account_can_sync('00000000-0000-4000-8000-000000000000'), false, 'an unknown account cannot sync');

-- The view's can_sync is the function's answer.
select is((select count(*)::int from keapsync.account_state a join keapsync.accounts x on x.id = a.account_id
            where a.can_sync <> keapsync.account_can_sync(x.id)), 0, 'can_sync and account_can_sync agree');

-- Members see their accounts' states only; anon nothing.
set local role authenticated;
select set_config('request.jwt.claims', '{"role": "authenticated", "sub": "a0000000-0000-4000-8000-0000000000f1"}', true);
select results_eq($$select keap_tenant, state from keapsync.account_state$$, $$values ('fa', 'failing')$$,
  'a member sees the state of their account only');
select is(keapsync.account_can_sync('00000000-0000-4000-8000-0000000000f6'), false, 'nor can they probe another account');
reset role;
set local role anon;
select throws_ok($$select * from keapsync.account_state$$, '42501', null, 'anon reads no state');
reset role;
select ok(not has_function_privilege('public', 'keapsync.account_can_sync(uuid)', 'execute'), 'no execute for PUBLIC');
select results_eq($$select s.connection from keapsync.sync_status s join keapsync.accounts a on a.id = s.account_id
                     where a.keap_tenant in ('nc', 'nr', 'pa', 'is') order by a.keap_tenant$$,
  $$values ('connected'), ('not_connected'), ('needs_reauth'), ('paused')$$,
  'sync_status.connection never says connected without a token');

select * from finish();
rollback;
