-- Connect links and OAuth states (issue #12): a link starts one flow, once, within its life;
-- nothing else stores a state; expired links and states go; only the service role may call.
begin;
create extension if not exists pgtap;
select plan(14);

select isnt(keapsync.new_oauth_link(sha256('link-1')), null, 'a link is made');
select is(keapsync.start_oauth(sha256('unknown'), 'state-0', 'https://x/cb'), false, 'an unknown link starts nothing');
select is((select count(*)::int from keapsync.oauth_states), 0, '... and stores no state');
select is(keapsync.start_oauth(sha256('link-1'), 'state-1', 'https://x/cb'), true, 'the link starts a flow');
select is(keapsync.start_oauth(sha256('link-1'), 'state-2', 'https://x/cb'), false, 'but only once');
select is(keapsync.take_oauth_state('state-1'), 'https://x/cb', 'the callback takes its state');
select is(keapsync.take_oauth_state('state-1'), null, 'once');

-- Expired links are refused; expired links and states are deleted by the next call.
insert into keapsync.oauth_links (link_hash, expires_at) values (sha256('old'), now() - interval '1 second');
insert into keapsync.oauth_states (state, redirect_uri, expires_at)
select 'old-' || g, 'https://x/cb', now() - interval '1 second' from generate_series(1, 20) g;
select is(keapsync.start_oauth(sha256('old'), 'state-3', 'https://x/cb'), false, 'an expired link starts nothing');
select is((select count(*)::int from keapsync.oauth_states) + (select count(*)::int from keapsync.oauth_links), 0,
          'expired states and links are gone');
select throws_ok($$select keapsync.new_oauth_link(sha256('long'), interval '2 days')$$, '22023', null,
                 'a link lives a day at most');

-- Only the service role may call them.
select ok(not has_function_privilege('anon', 'keapsync.start_oauth(bytea, text, text)', 'execute'), 'anon may not start a flow');
select ok(not has_function_privilege('authenticated', 'keapsync.new_oauth_link(bytea, interval)', 'execute'), 'authenticated may not make links');
select ok(not has_function_privilege('keap_analyst', 'keapsync.take_oauth_state(text)', 'execute'), 'analysts may not take states');
select ok(has_function_privilege('service_role', 'keapsync.start_oauth(bytea, text, text)', 'execute'), 'the service role may');

select * from finish();
rollback;
