-- Opportunities and pipeline stages: apply by keap_paths, what a push sends (ids where v2 takes
-- them), a stage's outcome, when an opportunity entered its stage, and the pipeline and won/lost
-- KPI numbers, under RLS.
begin;
create extension if not exists pgtap;
select plan(18);

insert into auth.users (id, email) values ('b0000000-0000-4000-8000-00000000000b', 'viewer-b@example.com');
insert into keapsync.accounts (id, name) values
  ('a0000000-0000-4000-8000-000000000001', 'A'), ('b0000000-0000-4000-8000-000000000001', 'B');
insert into keapsync.members (account_id, user_id, role)
values ('b0000000-0000-4000-8000-000000000001', 'b0000000-0000-4000-8000-00000000000b', 'viewer');
insert into keapsync.settings (account_id, default_policy)
values ('a0000000-0000-4000-8000-000000000001', 'manual'), ('b0000000-0000-4000-8000-000000000001', 'manual');

create function pg_temp.stage(p_account uuid, p_id int, p_name text, p_order int) returns text language sql as $$
  select keapsync.apply_keap_record(p_account, 'opportunity_stage', jsonb_build_object('id', p_id::text, 'name', p_name,
    'order', p_order, 'probability', 10 * p_order, 'target_number_days', 5, 'updated_time', '2026-01-01T00:00:00.000Z'));
$$;
create function pg_temp.opp(p_account uuid, p_id int, p_stage int, p_high numeric, p_low numeric, p_at text) returns text language sql as $$
  select keapsync.apply_keap_record(p_account, 'opportunity', jsonb_strip_nulls(jsonb_build_object('id', p_id::text,
    'opportunity_title', 'O' || p_id, 'contact', jsonb_build_object('id', '7'), 'stage', jsonb_build_object('id', p_stage::text, 'name', 'x'),
    'user', jsonb_build_object('id', '3'), 'projected_revenue_high', p_high, 'projected_revenue_low', p_low,
    'include_in_forecast', true, 'last_updated_time', p_at)));
$$;

select pg_temp.stage('a0000000-0000-4000-8000-000000000001', 1, 'New', 1);
select pg_temp.stage('a0000000-0000-4000-8000-000000000001', 2, 'Proposal', 2);
select pg_temp.stage('a0000000-0000-4000-8000-000000000001', 3, 'Closed Won', 3);
select pg_temp.stage('a0000000-0000-4000-8000-000000000001', 4, 'Lost', 4);
select pg_temp.stage('b0000000-0000-4000-8000-000000000001', 1, 'Won', 1);

select is((select string_agg(name || '=' || outcome, ',' order by keap_id) from keap.opportunity_stages
            where account_id = 'a0000000-0000-4000-8000-000000000001'),
          'New=open,Proposal=open,Closed Won=won,Lost=lost', 'a new stage''s outcome follows its name');
select is((select row(stage_order, probability, target_number_days)::text from keap.opportunity_stages
            where account_id = 'a0000000-0000-4000-8000-000000000001' and keap_id = 2), '(2,20,5)', 'stage columns read by keap_paths');

-- Account A: two open in New (one with only a low figure), one in Proposal, an opportunity whose
-- stage has not arrived, two won in January and one in February, one lost in February.
select is(pg_temp.opp('a0000000-0000-4000-8000-000000000001', 11, 1, 1000, 500, '2026-01-05T10:00:00.000Z'), 'inserted', 'an opportunity arrives');
select pg_temp.opp('a0000000-0000-4000-8000-000000000001', 12, 1, null, 300, '2026-01-06T10:00:00.000Z');
select pg_temp.opp('a0000000-0000-4000-8000-000000000001', 13, 2, 2000, 1500, '2026-01-07T10:00:00.000Z');
select pg_temp.opp('a0000000-0000-4000-8000-000000000001', 14, 99, 50, null, '2026-01-07T10:00:00.000Z');
select pg_temp.opp('a0000000-0000-4000-8000-000000000001', 15, 3, 400, null, '2026-01-10T10:00:00.000Z');
select pg_temp.opp('a0000000-0000-4000-8000-000000000001', 16, 3, 600, null, '2026-01-31T23:59:00.000Z');
select pg_temp.opp('a0000000-0000-4000-8000-000000000001', 17, 1, 700, null, '2026-01-03T10:00:00.000Z');
select pg_temp.opp('a0000000-0000-4000-8000-000000000001', 18, 4, 900, null, '2026-02-11T10:00:00.000Z');
select pg_temp.opp('b0000000-0000-4000-8000-000000000001', 11, 1, 99999, null, '2026-01-05T10:00:00.000Z');

select is((select row(title, contact_keap_id, stage_keap_id, user_id, projected_revenue_high, include_in_forecast)::text
             from keap.opportunities where account_id = 'a0000000-0000-4000-8000-000000000001' and keap_id = 11),
          row('O11', 7::bigint, 1::bigint, '3', 1000::numeric, true)::text, 'opportunity columns read by keap_paths');

-- Opportunity 17 is moved to the won stage by Keap in February: Keap's clock dates the move.
select is(pg_temp.opp('a0000000-0000-4000-8000-000000000001', 17, 3, 700, null, '2026-02-20T08:00:00.000Z'), 'updated', 'Keap moves it');
select is((select stage_moved_at from keap.opportunities where account_id = 'a0000000-0000-4000-8000-000000000001' and keap_id = 17),
          '2026-02-20T08:00:00Z'::timestamptz, 'stage_moved_at is the version that carried the move');
-- An edit that leaves the stage alone leaves stage_moved_at alone.
select pg_temp.opp('a0000000-0000-4000-8000-000000000001', 15, 3, 400, 100, '2026-03-01T00:00:00.000Z');
select is((select stage_moved_at from keap.opportunities where account_id = 'a0000000-0000-4000-8000-000000000001' and keap_id = 15),
          '2026-01-10T10:00:00Z'::timestamptz, 'an edit in the same stage keeps when it entered');

select results_eq(
  $$select stage_keap_id, stage_name, opportunities, value, value_low, value_high from keapsync.kpi_pipeline_by_stage
     where account_id = 'a0000000-0000-4000-8000-000000000001' order by stage_order nulls last$$,
  $$values (1::bigint, 'New'::text, 2::bigint, 1300::numeric, 800::numeric, 1000::numeric),
           (2::bigint, 'Proposal'::text, 1::bigint, 2000::numeric, 1500::numeric, 2000::numeric),
           (99::bigint, null::text, 1::bigint, 50::numeric, 0::numeric, 50::numeric)$$,
  'open pipeline per stage: won and lost stages left out, value high else low, an unknown stage open');
select results_eq(
  $$select month, won, lost, won_value, lost_value from keapsync.kpi_opportunities_monthly
     where account_id = 'a0000000-0000-4000-8000-000000000001' order by month$$,
  $$values ('2026-01-01T00:00:00Z'::timestamptz, 2::bigint, 0::bigint, 1000::numeric, 0::numeric),
           ('2026-02-01T00:00:00Z'::timestamptz, 1::bigint, 1::bigint, 700::numeric, 900::numeric)$$,
  'won and lost per month (UTC), by when they entered the stage');

-- An admin says Proposal is a lost stage: its opportunity leaves the pipeline and counts as lost
-- (in the month it entered the stage).
select set_config('keapsync.origin', '', true);
update keap.opportunity_stages set outcome = 'lost' where account_id = 'a0000000-0000-4000-8000-000000000001' and keap_id = 2;
select is((select lost from keapsync.kpi_opportunities_monthly
            where account_id = 'a0000000-0000-4000-8000-000000000001' and month = '2026-01-01T00:00:00Z'), 1::bigint,
          'marking a stage lost counts its opportunities lost');
select is((select count(*) from keapsync.kpi_pipeline_by_stage where account_id = 'a0000000-0000-4000-8000-000000000001' and stage_keap_id = 2),
          0::bigint, 'and takes them out of the open pipeline');

-- A local move: stamped with the local clock, and sent to Keap as stage_id alone, a string.
update keap.opportunities set stage_keap_id = 1 where account_id = 'a0000000-0000-4000-8000-000000000001' and keap_id = 13;
select is((select stage_moved_at from keap.opportunities where account_id = 'a0000000-0000-4000-8000-000000000001' and keap_id = 13),
          now(), 'a move made here is dated now');
select is((select keapsync.push_request('a0000000-0000-4000-8000-000000000001', 'opportunity', id) - 'pushed' - 'keap_id'
             from keap.opportunities where account_id = 'a0000000-0000-4000-8000-000000000001' and keap_id = 13),
          '{"op": "update", "body": {"stage_id": "1"}, "update_mask": ["stage_id"]}'::jsonb, 'the push sends stage_id as v2 takes it');
select is((select keapsync.push_request('a0000000-0000-4000-8000-000000000001', 'opportunity_stage', id) ->> 'op'
             from keap.opportunity_stages where account_id = 'a0000000-0000-4000-8000-000000000001' and keap_id = 2),
          'none', 'a stage''s outcome is keapsync''s own: nothing to send');

-- Both sides change the title: a field conflict (manual policy), recorded in history.
update keap.opportunities set title = 'Local title' where account_id = 'a0000000-0000-4000-8000-000000000001' and keap_id = 11;
select keapsync.apply_keap_record('a0000000-0000-4000-8000-000000000001', 'opportunity', '{"id": "11", "opportunity_title": "Keap title",
  "contact": {"id": "7"}, "stage": {"id": "1"}, "user": {"id": "3"}, "projected_revenue_high": 1000, "projected_revenue_low": 500,
  "include_in_forecast": true, "last_updated_time": "2026-04-01T00:00:00.000Z"}');
select is((select field || ':' || (local_value #>> '{}') || '/' || (keap_value #>> '{}') from keapsync.conflicts
            where object_type = 'opportunity' and status = 'open'),
          'title:Local title/Keap title', 'both changed the title: a conflict for that field only');
select is((select string_agg(distinct origin, ',' order by origin) from keapsync.change_history
            where table_name = 'opportunities' and keap_id = 11), 'keap,local', 'history holds both sides'' changes');

-- Under RLS, B's viewer sees B's numbers only.
set local role authenticated;
select set_config('request.jwt.claims', '{"role": "authenticated", "sub": "b0000000-0000-4000-8000-00000000000b"}', true);
select results_eq($$select account_id::text, won, won_value from keapsync.kpi_opportunities_monthly$$,
                  $$values ('b0000000-0000-4000-8000-000000000001', 1::bigint, 99999::numeric)$$,
                  'a viewer of B reads B''s won/lost only');
select is((select count(*) from keapsync.kpi_pipeline_by_stage), 0::bigint,
          'and no pipeline: A''s is not theirs, B''s one opportunity is won');
reset role;

select * from finish();
rollback;
