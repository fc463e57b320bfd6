-- A record Keap inserts leaves one history row holding the row's data columns, nulls stripped:
-- exactly what jsonb_strip_nulls(to_jsonb(row) - the bookkeeping columns) makes of the row as
-- stored, with the record's Keap id; for every tracked table, the contact-tag join included.
-- (Migration 20261204100000 builds it from the data columns instead of the whole row.)
begin;
create extension if not exists pgtap;
select plan(4);

insert into keapsync.accounts (id, name) values ('15000000-0000-4000-8000-000000000001', 'History');

-- Pages in an order where nothing is updated after its insert (a stage and a contact before
-- the opportunity that names them), so the stored rows are what each insert wrote.
select is((select sum((o ->> 'inserted')::int)::int from (
  select keapsync.apply_keap_page('15000000-0000-4000-8000-000000000001', p.type, p.raws) as o
  from (values
    (1, 'company', array['{"id": "4", "company_name": "Co", "update_time": "2026-01-01T00:00:00Z"}'::jsonb]),
    (2, 'tag_category', array['{"id": 1, "name": "C"}'::jsonb]),
    (3, 'contact', array[
      '{"id": 1, "given_name": "Ada", "family_name": null, "tag_ids": [11, 12], "company": {"id": 4},
        "email_addresses": [{"email": "a@example.com", "field": "EMAIL1"}],
        "custom_fields": [{"id": 1, "content": "amber"}, {"id": 3, "content": null}],
        "last_updated": "2026-01-02T00:00:00.000Z"}'::jsonb,
      '{"id": 2, "given_name": "Bo", "tag_ids": [12], "last_updated": "2026-01-02T00:00:00Z"}'::jsonb]),
    (4, 'opportunity_stage', array['{"id": "1", "name": "S", "updated_time": "2026-01-01T00:00:00Z"}'::jsonb]),
    (5, 'opportunity', array['{"id": "1", "opportunity_title": "Op", "stage": {"id": "1"}, "contact": {"id": "1"},
                               "last_updated_time": "2026-01-01T00:00:00Z"}'::jsonb]),
    (6, 'order', array['{"id": 1, "title": "O", "total": 10, "contact": {"id": 1}, "modification_date": "2026-01-01T00:00:00Z",
                         "order_items": [{"id": 1, "name": "Widget", "quantity": 2, "price": 5}]}'::jsonb]),
    (7, 'subscription', array['{"id": 1, "active": true, "contact_id": 1}'::jsonb]),
    (8, 'task', array['{"id": "1", "title": "T", "contact": {"id": 2}, "modification_time": "2026-01-01T00:00:00Z"}'::jsonb]),
    (9, 'product', array['{"id": "1", "name": "P", "update_time": "2026-01-01T00:00:00Z"}'::jsonb]),
    (10, 'note', array['{"id": 1, "title": "N", "contact_id": 1, "last_updated": "2026-01-01T00:00:00Z"}'::jsonb])
  ) p(n, type, raws)
 order by p.n) a), 11, 'Keap''s records inserted');

-- The row a history row is of, as stored, in the form history keeps.
create function pg_temp.stored(h keapsync.change_history) returns jsonb language plpgsql as $$
declare
  bookkeeping constant text[] := array['updated_at', 'version', 'sync_origin', 'keap_object', 'created_at'];
  r jsonb;
begin
  if h.table_name = 'contact_tags' then
    select jsonb_strip_nulls(to_jsonb(x) - bookkeeping) into r
      from keap.contact_tags x where x.contact_id = h.row_id and x.tag_id = (h.changed ->> 'tag_id')::bigint;
  else
    execute format('select jsonb_strip_nulls(to_jsonb(x) - $2) from keap.%I x where x.id = $1', h.table_name)
       into r using h.row_id, bookkeeping;
  end if;
  return r;
end;
$$;

select set_eq(
  $$select distinct table_name::text from keapsync.change_history where op = 'insert' and origin = 'keap'$$,
  $$select distinct event_object_table::text from information_schema.triggers
     where trigger_schema = 'keap' and trigger_name = 'track_insert'$$,
  'every tracked table has a record inserted by Keap');

select is_empty(
  $$select h.table_name, h.row_id, h.changed, pg_temp.stored(h) from keapsync.change_history h
     where h.op = 'insert' and h.origin = 'keap' and h.changed is distinct from pg_temp.stored(h)$$,
  'each history row holds its row''s data columns, nulls stripped (nested ones too)');

select is_empty(
  $$select h.table_name, h.row_id, h.keap_id from keapsync.change_history h
     where h.op = 'insert' and h.origin = 'keap' and h.keap_id is distinct from
           case when h.table_name = 'contact_tags' then (select c.keap_id from keap.contacts c where c.id = h.row_id)
                else (select (pg_temp.stored(h) ->> 'keap_id')::bigint) end
        or h.old_row is not null or h.new_row is not null or h.account_id <> '15000000-0000-4000-8000-000000000001'$$,
  'each history row names its record''s account and Keap id, and keeps no old or new row');

select * from finish();
rollback;
