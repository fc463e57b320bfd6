-- Custom fields by name: keap.contacts_custom, generated from keapsync.custom_fields by
-- keapsync.refresh_custom_views(): its column names (collisions, hostile labels), its types, what
-- a rename keeps, writes through it, and RLS on it.
begin;
create extension if not exists pgtap;
select plan(44);

insert into auth.users (id, email) values
  ('a0000000-0000-4000-8000-00000000000a', 'viewer-a@example.com'),
  ('a0000000-0000-4000-8000-0000000000ad', 'admin-a@example.com'),
  ('b0000000-0000-4000-8000-00000000000b', 'viewer-b@example.com');
insert into keapsync.accounts (id, name) values
  ('aaaaaaaa-0000-4000-8000-000000000000', 'A'), ('bbbbbbbb-0000-4000-8000-000000000000', 'B');
insert into keapsync.members (account_id, user_id, role) values
  ('aaaaaaaa-0000-4000-8000-000000000000', 'a0000000-0000-4000-8000-00000000000a', 'viewer'),
  ('aaaaaaaa-0000-4000-8000-000000000000', 'a0000000-0000-4000-8000-0000000000ad', 'admin'),
  ('bbbbbbbb-0000-4000-8000-000000000000', 'b0000000-0000-4000-8000-00000000000b', 'viewer');

select keapsync.apply_keap_record('aaaaaaaa-0000-4000-8000-000000000000', 'contact',
  '{"id": 1, "given_name": "Ann", "last_updated": "2026-01-01T00:00:00Z", "custom_fields": [
     {"id": 3, "content": 12}, {"id": 5, "content": "2026-05-01"}, {"id": 6, "content": "2026-05-01T10:30:00Z"},
     {"id": 7, "content": "red, blue"}, {"id": 9, "content": "lower seats"}, {"id": 11, "content": "hostile"}]}');
select keapsync.apply_keap_record('aaaaaaaa-0000-4000-8000-000000000000', 'contact',
  '{"id": 2, "given_name": "Bob", "last_updated": "2026-01-01T00:00:00Z", "custom_fields": [
     {"id": 3, "content": "not a number"}, {"id": 5, "content": "2026-02-30"}, {"id": 6, "content": "25:00"},
     {"id": 7, "content": ["x", "y"]}]}');
select keapsync.apply_keap_record('bbbbbbbb-0000-4000-8000-000000000000', 'contact',
  '{"id": 1, "given_name": "Bea", "last_updated": "2026-01-01T00:00:00Z", "custom_fields": [{"id": 40, "content": "b-seats"}]}');

select is(keapsync.apply_custom_field_model('aaaaaaaa-0000-4000-8000-000000000000', 'contact', $$[
  {"id": 3, "label": "Seats", "field_type": "WholeNumber"},
  {"id": 5, "label": "Renewal date", "field_type": "Date"},
  {"id": 6, "label": "Last call", "field_type": "DateTime"},
  {"id": 7, "label": "Colours", "field_type": "ListBox", "options": [{"id": "1", "label": "red"}, {"id": "2", "label": "blue"}]},
  {"id": 9, "label": "SEATS!", "field_type": "Text"},
  {"id": 11, "label": "x\"; drop table keap.contacts; --", "field_type": "Text"},
  {"id": 12, "label": "Größe", "field_type": "Text"},
  {"id": 13, "label": "価格", "field_type": "Text"},
  {"id": 14, "label": "Keap ID", "field_type": "Text"},
  {"id": 15, "label": "it's \"quoted\"; select 1", "field_type": "Text"},
  {"id": "x", "label": "no id"}]$$), 10, 'the model is stored (an entry without a numeric id is skipped)');
create temp table cols as
select a.attname::text as name, format_type(a.atttypid, a.atttypmod) as type, a.attnum
  from pg_attribute a where a.attrelid = 'keap.contacts_custom'::regclass and a.attnum > 0 and not a.attisdropped;

-- ---- names and types ---------------------------------------------------------------------------
select is((select array_agg(name order by attnum) from cols),
  array['id', 'account_id', 'keap_id', 'seats', 'renewal_date', 'last_call', 'colours', 'seats__9',
        'x_drop_table_keap_contacts', 'grosse', 'field__13', 'keap_id__14', 'it_s_quoted_select_1'],
  'columns are the labels in snake_case, in Keap''s order; a taken or empty name is suffixed with the id');
select is((select type from cols where name = 'renewal_date'), 'date', 'a Date field is a date');
select is((select type from cols where name = 'last_call'), 'timestamp with time zone', 'a DateTime field is a timestamptz');
select is((select type from cols where name = 'colours'), 'text[]', 'a multi-select is text[]');
select is((select type from cols where name = 'seats__9'), 'text', 'a Text field is text');
select is(keapsync.apply_custom_field_model('bbbbbbbb-0000-4000-8000-000000000000', 'contact',
  '[{"id": 40, "label": "Seats", "field_type": "Text"}]'), 1, 'another account''s model too');
select is((select format_type(atttypid, atttypmod) from pg_attribute where attrelid = 'keap.contacts_custom'::regclass and attname = 'seats'),
          'text', 'a column shared by accounts whose fields'' types differ is text');
select is((select column_name from keapsync.custom_fields where account_id = 'bbbbbbbb-0000-4000-8000-000000000000'),
          'seats', 'each account names its own fields: B''s Seats is seats in B');
select ok(to_regclass('keap.contacts') is not null, 'a hostile label is only a name');
select is((select reloptions from pg_class where oid = 'keap.contacts_custom'::regclass), array['security_invoker=true'],
          'the view runs as whoever queries it, under keap.contacts'' RLS');

-- ---- values ------------------------------------------------------------------------------------
select is((select seats from keap.contacts_custom where keap_id = 1 and account_id = 'aaaaaaaa-0000-4000-8000-000000000000'),
          '12', 'a number reads as the number (the column is text since B''s Seats is text)');
select is((select renewal_date from keap.contacts_custom where keap_id = 1 and account_id = 'aaaaaaaa-0000-4000-8000-000000000000'),
          '2026-05-01'::date, 'a date reads as a date');
select is((select last_call from keap.contacts_custom where keap_id = 1 and account_id = 'aaaaaaaa-0000-4000-8000-000000000000'),
          '2026-05-01T10:30:00Z'::timestamptz, 'a time reads as a timestamptz');
select is((select colours from keap.contacts_custom where keap_id = 1 and account_id = 'aaaaaaaa-0000-4000-8000-000000000000'),
          array['red', 'blue'], 'a comma-separated multi-select reads as an array');
select is((select colours from keap.contacts_custom where keap_id = 2), array['x', 'y'], 'so does a JSON list');
select is((select row(renewal_date, last_call)::text from keap.contacts_custom where keap_id = 2),
          '(,)', 'values that are not of the field''s type read as null, and the query still runs');
select is((select seats from keap.contacts_custom where account_id = 'bbbbbbbb-0000-4000-8000-000000000000'),
          'b-seats', 'each row reads its own account''s field of that name');

-- ---- rename, removal, no churn -----------------------------------------------------------------
select is(keapsync.apply_custom_field_model('aaaaaaaa-0000-4000-8000-000000000000', 'contact', null), 0,
          'a model without a custom_fields list removes nothing');
create temp table before_oid as select 'keap.contacts_custom'::regclass::oid as oid;
select keapsync.apply_custom_field_model('aaaaaaaa-0000-4000-8000-000000000000', 'contact',
  (select jsonb_agg(jsonb_build_object('id', keap_id, 'label', label, 'field_type', field_type, 'options', options) order by keap_id)
     from keapsync.custom_fields where account_id = 'aaaaaaaa-0000-4000-8000-000000000000'));
select is('keap.contacts_custom'::regclass::oid, (select oid from before_oid), 'an unchanged model leaves the view as it is');
select is(keapsync.apply_custom_field_model('aaaaaaaa-0000-4000-8000-000000000000', 'contact',
  (select jsonb_agg(jsonb_build_object('id', keap_id, 'label', case keap_id when 3 then 'Licensed seats' else label end,
                                       'field_type', field_type, 'options', options) order by keap_id)
     from keapsync.custom_fields where account_id = 'aaaaaaaa-0000-4000-8000-000000000000' and keap_id <> 15)), 2,
  'a rename and a removal are two changes');
select is((select licensed_seats from keap.contacts_custom where keap_id = 1 and account_id = 'aaaaaaaa-0000-4000-8000-000000000000'),
          12::numeric, 'after a rename the column has the new name and the same value');
select is((select format_type(atttypid, atttypmod) from pg_attribute where attrelid = 'keap.contacts_custom'::regclass and attname = 'licensed_seats'),
          'numeric', 'a number field is numeric');
select is((select licensed_seats from keap.contacts_custom where keap_id = 2), null::numeric,
          'a value that is not a number reads as null');
select ok(not exists (select 1 from pg_attribute where attrelid = 'keap.contacts_custom'::regclass and attname = 'it_s_quoted_select_1'),
          'a field Keap no longer has leaves the view');
select is((select custom_fields ->> '11' from keap.contacts where keap_id = 1 and account_id = 'aaaaaaaa-0000-4000-8000-000000000000'),
          'hostile', 'and its values stay in the row, keyed by id');
select is((select column_name from keapsync.custom_fields where keap_id = 9), 'seats',
          'the name a rename freed goes to the field that wanted it');

-- ---- writes ------------------------------------------------------------------------------------
select set_config('keapsync.origin', '', true);  -- the applies above marked the transaction as Keap's
update keap.contacts_custom set licensed_seats = 20, renewal_date = '2027-01-31', colours = array['green', 'red'], seats = null
 where keap_id = 1 and account_id = 'aaaaaaaa-0000-4000-8000-000000000000';
select is((select custom_fields from keap.contacts where keap_id = 1 and account_id = 'aaaaaaaa-0000-4000-8000-000000000000'),
          '{"3": 20, "5": "2027-01-31", "6": "2026-05-01T10:30:00Z", "7": "green,red", "11": "hostile"}'::jsonb,
          'an update writes custom_fields by id in Keap''s shapes; null removes the value');
select is((select count(*)::int from keapsync.change_history h join keap.contacts c on c.id = h.row_id
            where h.table_name = 'contacts' and h.origin = 'local' and c.keap_id = 1
              and c.account_id = 'aaaaaaaa-0000-4000-8000-000000000000' and h.changed ? 'custom_fields'), 1,
          'it is a local change of the contact, recorded like one made to the table');
select throws_ok($$update keap.contacts_custom set seats__40 = 'x' where account_id = 'aaaaaaaa-0000-4000-8000-000000000000'$$,
                 '42703', null, 'a column that is another account''s field cannot be written for this one');
select throws_ok($$update keap.contacts_custom set keap_id = 99 where account_id = 'aaaaaaaa-0000-4000-8000-000000000000'$$,
                 '42703', null, 'nor can the row''s ids');

-- ---- RLS and privileges ------------------------------------------------------------------------
create function pg_temp.attempt(p_who text, p_sql text) returns text language plpgsql as $$
declare
  n bigint;
begin
  begin
    perform set_config('request.jwt.claims', case p_who
      when 'viewer_a' then '{"role": "authenticated", "sub": "a0000000-0000-4000-8000-00000000000a"}'
      when 'admin_a' then '{"role": "authenticated", "sub": "a0000000-0000-4000-8000-0000000000ad"}'
      when 'viewer_b' then '{"role": "authenticated", "sub": "b0000000-0000-4000-8000-00000000000b"}'
      else '' end, true);
    perform set_config('role', case p_who when 'anon' then 'anon' when 'analyst' then 'keap_analyst'
                                          else 'authenticated' end, true);
    if p_sql like 'select%' then
      execute p_sql into n;
    else
      execute p_sql;
      get diagnostics n = row_count;
    end if;
    raise exception using errcode = 'KS001', message = n::text;
  exception
    when insufficient_privilege then return 'denied';
    when sqlstate 'KS001' then return sqlerrm;
  end;
end;
$$;
select is(pg_temp.attempt('viewer_a', 'select count(*) from keap.contacts_custom'), '2', 'a member of A reads A''s rows');
select is(pg_temp.attempt('viewer_b', 'select count(seats) from keap.contacts_custom'), '1', 'a member of B reads B''s only');
select is(pg_temp.attempt('analyst', 'select count(*) from keap.contacts_custom'), '3', 'an analyst reads every row');
select is(pg_temp.attempt('anon', 'select count(*) from keap.contacts_custom'), 'denied', 'anon reads nothing');
select is(pg_temp.attempt('admin_a', 'update keap.contacts_custom set seats = ''9'' where keap_id = 2'), '1',
          'an admin of A writes A''s contacts through the view');
select is(pg_temp.attempt('viewer_a', 'update keap.contacts_custom set seats = ''9'' where keap_id = 2'), '0',
          'a viewer writes nothing');
select is(pg_temp.attempt('admin_a', $$update keap.contacts_custom set seats = 'x' where account_id = 'bbbbbbbb-0000-4000-8000-000000000000'$$), '0',
          'an admin of A cannot write B''s rows through the view');
select is(pg_temp.attempt('analyst', 'update keap.contacts_custom set seats = ''9'''), 'denied', 'an analyst only reads');
select is(pg_temp.attempt('admin_a', 'delete from keap.contacts_custom'), 'denied', 'the view deletes nothing');

-- What an applied record's custom values and tag links become, at the edges (a later entry of an
-- id wins; no id, null content or no list leave nothing), as the query-based versions had it.
select is(keapsync.keap_custom_columns('custom_fields', '{"custom_fields": [{"id": 1, "content": "a"}, {"id": 2, "content": null},
            {"content": "no id"}, {"id": 1, "content": "b"}, {"id": "x", "content": {"k": null}}, 7]}'),
          '{"custom_fields": {"1": "b", "x": {"k": null}}}', 'custom values: a later id wins, no id or null content left out');
select is(keapsync.keap_custom_columns('custom_fields', '{"custom_fields": {"1": "a"}}') || keapsync.keap_custom_columns(null, '{"custom_fields": []}'),
          '{}', 'custom values: nothing without a list or a column');
select is(keapsync.tag_doc('{"tag_ids": [3, "4", 3]}'), '{"tag.3": true, "tag.4": true}', 'tag doc: one key a tag');
select is(keapsync.tag_doc('{"tag_ids": null}') || keapsync.tag_doc('{"tag_ids": []}') || keapsync.tag_doc('{}'), '{}', 'tag doc: none without tags');

select * from finish();
rollback;
