-- Deleting an account leaves nothing of it in any table that has an account_id, and nothing of
-- another account goes with it: every row is reached by a cascade, through its own key to the
-- account or through its parent's (a contact's tags, an order's items and payments).
begin;
create extension if not exists pgtap;
select plan(4);

insert into keapsync.accounts (id, name) values
  ('16000000-0000-4000-8000-00000000000a', 'Leaving'),
  ('16000000-0000-4000-8000-00000000000b', 'Staying');

create function pg_temp.fill(p_account uuid) returns void language sql as $$
  select keapsync.apply_keap_page(p_account, 'contact', array[
    '{"id": 1, "given_name": "Ada", "tag_ids": [11, 12], "last_updated": "2026-01-02T00:00:00Z"}'::jsonb]);
  select keapsync.apply_keap_page(p_account, 'order', array[
    '{"id": 1, "title": "O", "total": 10, "contact": {"id": 1}, "modification_date": "2026-01-01T00:00:00Z",
      "order_items": [{"id": 1, "name": "Widget", "quantity": 2, "price": 5}],
      "payments": [{"id": 77, "amount": 10, "invoice_id": 1, "pay_date": "2026-01-02T00:00:00Z", "pay_status": "Paid"}]}'::jsonb]);
$$;
select pg_temp.fill('16000000-0000-4000-8000-00000000000a');
select pg_temp.fill('16000000-0000-4000-8000-00000000000b');

-- Rows of p_account in every table of keap and keapsync that has an account_id, by table.
create function pg_temp.rows_of(p_account uuid) returns table (tbl text, n bigint) language plpgsql as $$
declare c record;
begin
  for c in select format('%I.%I', table_schema, table_name) as t from information_schema.columns
            where table_schema in ('keap', 'keapsync') and column_name = 'account_id'
              and table_name in (select table_name from information_schema.tables
                                  where table_schema in ('keap', 'keapsync') and table_type = 'BASE TABLE')
              and table_name <> 'change_history'  -- history outlives its rows by design
  loop
    tbl := c.t;
    execute format('select count(*) from %s where account_id = $1', c.t) into n using p_account;
    return next;
  end loop;
end;
$$;

select ok((select n from pg_temp.rows_of('16000000-0000-4000-8000-00000000000a') where tbl = 'keap.contact_tags') = 2
          and (select n from pg_temp.rows_of('16000000-0000-4000-8000-00000000000a') where tbl = 'keap.order_items') = 1
          and (select n from pg_temp.rows_of('16000000-0000-4000-8000-00000000000a') where tbl = 'keap.order_payments') = 1,
          'the leaving account has tags on its contact, an item and a payment on its order');
create temp table staying as select * from pg_temp.rows_of('16000000-0000-4000-8000-00000000000b');

delete from keapsync.accounts where id = '16000000-0000-4000-8000-00000000000a';

select is_empty($$select * from pg_temp.rows_of('16000000-0000-4000-8000-00000000000a') where n > 0$$,
                'nothing of a deleted account is left');
select set_eq($$select * from pg_temp.rows_of('16000000-0000-4000-8000-00000000000b')$$, $$select * from staying$$,
              'the other account keeps every row');
select ok((select sum(n) from staying) > 0, 'and it had rows to keep');

select * from finish();
rollback;
