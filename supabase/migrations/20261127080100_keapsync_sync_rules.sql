-- keapsync sync rules: how a Keap record becomes a row, the three-way field merge, conflicts,
-- what to push, and marking a push done. Go moves bytes; these functions decide.
--
-- A record is compared as a flat "doc": a jsonb object of column -> value, normalised through the
-- table's own column types (so Keap's strings and our columns compare equal), with the jsonb map
-- column expanded key by key (`custom_fields.<id>`) and a contact's tags as `tag.<keap tag id>`.
-- Null and absent are the same. Functions run with TimeZone UTC so timestamps render one way.

insert into keapsync.object_types (object_type, table_name, merge_columns, keap_columns, map_column) values
  ('contact', 'contacts',
   array['given_name', 'middle_name', 'family_name', 'email', 'phone', 'job_title',
         'address_line1', 'address_line2', 'locality', 'region', 'postal_code', 'country_code',
         'owner_id', 'lead_source_id'],
   -- company_name is Keap's: a contact names its company by id, the name lives on the company.
   array['company_name', 'email_status', 'email_opted_in', 'date_created', 'last_updated'],
   'custom_fields'),
  ('tag_category', 'tag_categories', array['name', 'description'], array[]::text[], null),
  ('tag', 'tags', array['name', 'description', 'category_keap_id'], array[]::text[], null),
  ('order', 'orders',
   array['contact_keap_id', 'title', 'order_type', 'order_date', 'notes'],
   array['status', 'source_type', 'total', 'total_paid', 'total_due', 'refund_total',
         'creation_date', 'modification_date'],
   null),
  ('subscription', 'subscriptions',
   array['contact_keap_id', 'product_id', 'subscription_plan_id', 'active', 'billing_amount',
         'billing_cycle', 'billing_frequency', 'quantity', 'start_date', 'end_date', 'next_bill_date',
         'auto_charge'],
   array['modification_time'],
   null);

-- ---------------------------------------------------------------------------------------------
-- Origin marker: writes made on behalf of Keap (and by rollback/resolve) say so in a
-- transaction-local setting. Triggers stamp `sync_origin` from it into the row itself, so the
-- logical replication stream carries the marker and the push path skips Keap's own writes.
-- ---------------------------------------------------------------------------------------------
create or replace function keapsync.set_origin(p_origin text) returns void
language sql volatile set search_path = ''
as $$
  select set_config('keapsync.origin', p_origin, true);
$$;

-- No SET clause, so the planner can inline it (it names only built-ins, schema-qualified).
create or replace function keapsync.current_origin() returns text
language sql stable
as $$
  select case coalesce(nullif(pg_catalog.current_setting('keapsync.origin', true), ''), 'local')
           when 'keap' then 'keap' when 'rollback' then 'rollback' when 'resolve' then 'resolve'
           else 'local' end;
$$;

-- ---------------------------------------------------------------------------------------------
-- Who may do what. Membership checks are security definer so RLS policies can use them without
-- recursing into the members table's own policies.
-- ---------------------------------------------------------------------------------------------
create or replace function keapsync.is_member(p_account uuid) returns boolean
language sql stable security definer set search_path = ''
as $$
  select exists (select 1 from keapsync.members m
                  where m.account_id = p_account and m.user_id = (select auth.uid()));
$$;

create or replace function keapsync.is_admin(p_account uuid) returns boolean
language sql stable security definer set search_path = ''
as $$
  select exists (select 1 from keapsync.members m
                  where m.account_id = p_account and m.user_id = (select auth.uid()) and m.role = 'admin');
$$;

-- The accounts the requesting user belongs to (or administers), as arrays: RLS policies compare
-- `account_id = any ((select keapsync.my_accounts())::uuid[])`, which PostgreSQL evaluates once per query
-- (an initPlan) instead of once per row.
create or replace function keapsync.my_accounts() returns uuid[]
language sql stable security definer set search_path = ''
as $$
  select coalesce(array_agg(m.account_id), '{}') from keapsync.members m where m.user_id = (select auth.uid());
$$;

create or replace function keapsync.my_admin_accounts() returns uuid[]
language sql stable security definer set search_path = ''
as $$
  select coalesce(array_agg(m.account_id), '{}') from keapsync.members m
   where m.user_id = (select auth.uid()) and m.role = 'admin';
$$;

-- Gate for the functions that change sync state. A request from Supabase (a JWT with role
-- `authenticated` or `anon`, or a session that did `set role authenticated`) must come from an
-- admin member of the account; the service role and trusted database owners pass. EXECUTE on the
-- gated functions is granted only to authenticated and service_role (see the security migration).
create or replace function keapsync.require_admin(p_account uuid) returns void
language plpgsql stable security definer set search_path = ''
as $$
declare
  v_role text := coalesce(auth.role(), nullif(current_setting('role', true), 'none'));
begin
  if v_role in ('authenticated', 'anon') and not keapsync.is_admin(p_account) then
    raise exception 'keapsync: only an admin of account % may do this', p_account
      using errcode = '42501';
  end if;
end;
$$;

-- Keap timestamps, read liberally: `Z` or `+0000`, with or without milliseconds; empty is null.
-- No SET clauses, so these inline into the set-based apply; Keap's timestamps carry their offset.
create or replace function keapsync.keap_time(p text) returns timestamptz
language sql stable
as $$
  select nullif(pg_catalog.btrim(p), '')::pg_catalog.timestamptz;
$$;

-- Keap's own version clock for a record: the field Keap bumps on every change.
create or replace function keapsync.keap_modified(p_type text, p_raw jsonb) returns timestamptz
language sql stable
as $$
  select keapsync.keap_time(case p_type
    when 'contact' then coalesce(p_raw ->> 'last_updated', p_raw ->> 'update_time')
    when 'order' then coalesce(p_raw ->> 'modification_date', p_raw ->> 'modification_time')
    when 'subscription' then p_raw ->> 'modification_time'
    when 'tag' then p_raw ->> 'update_time'
    else null end);
$$;

-- Keap's JSON -> column-shaped jsonb (values still Keap's strings; normalised later). A plain SQL
-- expression without SET clauses, so it inlines into the set-based apply of a backfill page.
-- Unknown types yield null; callers check the type against keapsync.object_types first.
create or replace function keapsync.keap_columns_of(p_type text, p_raw jsonb) returns jsonb
language sql stable
as $$
  select case p_type
  when 'contact' then
    pg_catalog.jsonb_build_object(
      'given_name', p_raw ->> 'given_name',
      'middle_name', p_raw ->> 'middle_name',
      'family_name', p_raw ->> 'family_name',
      'email', (select e ->> 'email' from pg_catalog.jsonb_array_elements(
                  case when pg_catalog.jsonb_typeof(p_raw -> 'email_addresses') = 'array' then p_raw -> 'email_addresses' else '[]' end) e
                 order by e ->> 'field' limit 1),
      'phone', (select ph ->> 'number' from pg_catalog.jsonb_array_elements(
                  case when pg_catalog.jsonb_typeof(p_raw -> 'phone_numbers') = 'array' then p_raw -> 'phone_numbers' else '[]' end) ph
                 order by ph ->> 'field' limit 1),
      'company_name', coalesce(p_raw -> 'company' ->> 'company_name', p_raw ->> 'company_name'),
      'job_title', p_raw ->> 'job_title',
      'owner_id', p_raw ->> 'owner_id',
      'lead_source_id', p_raw ->> 'lead_source_id',
      'email_status', p_raw ->> 'email_status',
      'email_opted_in', p_raw ->> 'email_opted_in',
      'date_created', p_raw ->> 'date_created',
      'last_updated', p_raw ->> 'last_updated')
    -- The billing address (else the first one) fills the address columns.
    || coalesce((select pg_catalog.jsonb_build_object(
                   'address_line1', a ->> 'line1', 'address_line2', a ->> 'line2', 'locality', a ->> 'locality',
                   'region', a ->> 'region', 'postal_code', coalesce(a ->> 'postal_code', a ->> 'zip_code'),
                   'country_code', a ->> 'country_code')
                   from pg_catalog.jsonb_array_elements(
                     case when pg_catalog.jsonb_typeof(p_raw -> 'addresses') = 'array' then p_raw -> 'addresses' else '[]' end) a
                  order by (a ->> 'field' = 'BILLING') desc, a ->> 'field' limit 1),
                 pg_catalog.jsonb_build_object('address_line1', null, 'address_line2', null, 'locality', null,
                   'region', null, 'postal_code', null, 'country_code', null))
    || case when pg_catalog.jsonb_typeof(p_raw -> 'custom_fields') = 'array' then
         pg_catalog.jsonb_build_object('custom_fields', coalesce(
           (select pg_catalog.jsonb_object_agg(cf ->> 'id', cf -> 'content')
              from pg_catalog.jsonb_array_elements(p_raw -> 'custom_fields') cf
             where cf ->> 'id' is not null and pg_catalog.jsonb_typeof(cf -> 'content') <> 'null'), '{}'))
       else '{}' end
  when 'tag_category' then
    pg_catalog.jsonb_build_object('name', p_raw ->> 'name', 'description', p_raw ->> 'description')
  when 'tag' then
    pg_catalog.jsonb_build_object('name', p_raw ->> 'name', 'description', p_raw ->> 'description',
      'category_keap_id', coalesce(p_raw -> 'category' ->> 'id', p_raw ->> 'category_id'))
  when 'order' then
    pg_catalog.jsonb_build_object(
      'contact_keap_id', coalesce(p_raw -> 'contact' ->> 'id', p_raw ->> 'contact_id'),
      'title', p_raw ->> 'title', 'status', p_raw ->> 'status', 'order_type', p_raw ->> 'order_type',
      'source_type', p_raw ->> 'source_type', 'order_date', p_raw ->> 'order_date',
      'total', p_raw ->> 'total', 'total_paid', p_raw ->> 'total_paid', 'total_due', p_raw ->> 'total_due',
      'refund_total', p_raw ->> 'refund_total', 'notes', p_raw ->> 'notes',
      'creation_date', p_raw ->> 'creation_date', 'modification_date', p_raw ->> 'modification_date')
  when 'subscription' then
    pg_catalog.jsonb_build_object(
      'contact_keap_id', p_raw ->> 'contact_id', 'product_id', p_raw ->> 'product_id',
      'subscription_plan_id', p_raw ->> 'subscription_plan_id', 'active', p_raw ->> 'active',
      'billing_amount', p_raw ->> 'billing_amount', 'billing_cycle', p_raw ->> 'billing_cycle',
      'billing_frequency', p_raw ->> 'billing_frequency', 'quantity', p_raw ->> 'quantity',
      'start_date', p_raw ->> 'start_date', 'end_date', p_raw ->> 'end_date',
      'next_bill_date', p_raw ->> 'next_bill_date', 'auto_charge', p_raw ->> 'auto_charge',
      'modification_time', p_raw ->> 'modification_time')
  end;
$$;

-- A typed row (to_jsonb of a keap.* row) -> flat doc: the merged (and unless p_merged_only, the
-- Keap-owned) columns, the map column expanded key by key, nulls dropped. No SET clause, so it
-- inlines into the set-based apply.
create or replace function keapsync.flat_doc_typed(p_type text, p_typed jsonb, p_merged_only boolean default false)
returns jsonb
language sql stable
as $$
  select coalesce((select pg_catalog.jsonb_object_agg(c, p_typed -> c)
                     from pg_catalog.unnest(case when p_merged_only then t.merge_columns
                                                 else t.merge_columns || t.keap_columns end) c
                    where pg_catalog.jsonb_typeof(p_typed -> c) <> 'null'), '{}')
      || coalesce((select pg_catalog.jsonb_object_agg(t.map_column || '.' || e.key, e.value)
                     from pg_catalog.jsonb_each(case when pg_catalog.jsonb_typeof(p_typed -> t.map_column) = 'object'
                                                     then p_typed -> t.map_column else '{}' end) e
                    where pg_catalog.jsonb_typeof(e.value) <> 'null'), '{}')
    from keapsync.object_types t where t.object_type = p_type;
$$;

-- A column-shaped jsonb with Keap's strings (keap_columns_of) -> flat doc, normalised through
-- the table's column types so Keap's values and our columns compare equal.
create or replace function keapsync.flat_doc(p_type text, p_cols jsonb) returns jsonb
language plpgsql stable set search_path = '' set timezone to 'UTC'
as $$
declare
  typed jsonb;
begin
  execute format('select to_jsonb(jsonb_populate_record(null::keap.%I, $1))',
                 (select table_name from keapsync.object_types where object_type = p_type))
    into typed using p_cols;
  -- Only what the object carried: a column absent from p_cols stays absent.
  return keapsync.flat_doc_typed(p_type, (select coalesce(jsonb_object_agg(key, value), '{}')
                                            from jsonb_each(typed) where p_cols ? key));
end;
$$;

-- Tag keys (`tag.<id>`) a contact object carries (none when it carries no tag ids).
create or replace function keapsync.tag_doc(p_raw jsonb) returns jsonb
language sql immutable set search_path = ''
as $$
  select coalesce(jsonb_object_agg('tag.' || (t #>> '{}'), true), '{}')
    from jsonb_array_elements(case when jsonb_typeof(p_raw -> 'tag_ids') = 'array' then p_raw -> 'tag_ids' else '[]' end) t;
$$;

-- The doc of a Keap object, tags included. What the object does not carry is decided by
-- keap_unknown below, so the merge reads it as unknown rather than removed.
create or replace function keapsync.keap_doc(p_type text, p_raw jsonb) returns jsonb
language sql stable set search_path = '' set timezone to 'UTC'
as $$
  select keapsync.flat_doc(p_type, keapsync.keap_columns_of(p_type, p_raw))
      || case when p_type = 'contact' then keapsync.tag_doc(p_raw) else '{}' end;
$$;

-- What a Keap object does not carry, so the merge reads it as unknown rather than removed: exact
-- keys, or key prefixes ending in '.'. Keap returns job_title, lead_source_id, custom_fields and
-- tag_ids only when asked (optional_properties), and a partial object may leave out more.
create or replace function keapsync.keap_unknown(p_type text, p_raw jsonb) returns text[]
language sql immutable set search_path = ''
as $$
  select case when p_type <> 'contact' then '{}'::text[] else array(
    select key from (values
      ('given_name', 'given_name'), ('middle_name', 'middle_name'), ('family_name', 'family_name'),
      ('email', 'email_addresses'), ('phone', 'phone_numbers'),
      ('job_title', 'job_title'), ('owner_id', 'owner_id'), ('lead_source_id', 'lead_source_id'),
      ('address_line1', 'addresses'), ('address_line2', 'addresses'), ('locality', 'addresses'),
      ('region', 'addresses'), ('postal_code', 'addresses'), ('country_code', 'addresses'),
      ('custom_fields.', 'custom_fields'), ('tag.', 'tag_ids')) m(key, source)
     where not (p_raw ? m.source))
  end;
$$;

-- The doc of a local row (null when the row does not exist), tags included for contacts.
create or replace function keapsync.row_doc(p_type text, p_local_id bigint) returns jsonb
language plpgsql stable set search_path = '' set timezone to 'UTC'
as $$
declare
  t keapsync.object_types;
  r jsonb;
  doc jsonb;
begin
  select * into strict t from keapsync.object_types where object_type = p_type;
  execute format('select to_jsonb(x) from keap.%I x where x.id = $1', t.table_name) into r using p_local_id;
  if r is null then
    return null;
  end if;
  doc := keapsync.flat_doc_typed(p_type, r);
  if p_type = 'contact' then
    doc := doc || coalesce((select jsonb_object_agg('tag.' || tg.keap_id, true)
                              from keap.contact_tags ct join keap.tags tg on tg.id = ct.tag_id
                             where ct.contact_id = p_local_id and tg.keap_id is not null), '{}');
  end if;
  return doc;
end;
$$;

-- Is this doc key one of the merged ones (as opposed to Keap-owned)?
-- No SET clause: it inlines into the merge loops (it names only built-ins).
create or replace function keapsync.is_merge_key(t keapsync.object_types, p_key text) returns boolean
language sql immutable
as $$
  select p_key = any (t.merge_columns)
      or (t.map_column is not null and p_key like t.map_column || '.%')
      or (t.object_type = 'contact' and p_key like 'tag.%');
$$;

-- The conflict policy for one field: the most specific setting wins.
create or replace function keapsync.policy_for(p_account uuid, p_type text, p_field text) returns text
language sql stable set search_path = ''
as $$
  select coalesce(
    (select policy from keapsync.conflict_policies
      where account_id = p_account and object_type = p_type and field = p_field),
    (select policy from keapsync.conflict_policies
      where account_id = p_account and object_type = p_type and field = '*'),
    (select default_policy from keapsync.settings where account_id = p_account),
    'newest_wins');
$$;

-- Write a doc into the local row (insert when p_local_id is null); returns the row id. Only the
-- columns in p_columns are written; tags are reconciled for contacts.
create or replace function keapsync.write_row(
  p_account uuid, p_type text, p_local_id bigint, p_keap_id bigint, p_doc jsonb, p_raw jsonb)
returns bigint
language plpgsql volatile set search_path = '' set timezone to 'UTC'
as $$
declare
  t keapsync.object_types;
  cols jsonb := '{}';
  c text;
  collist text;
  id bigint := p_local_id;
begin
  select * into strict t from keapsync.object_types where object_type = p_type;
  foreach c in array t.merge_columns || t.keap_columns loop
    cols := cols || jsonb_build_object(c, p_doc -> c);
  end loop;
  if t.map_column is not null then
    cols := cols || jsonb_build_object(t.map_column, coalesce(
      (select jsonb_object_agg(substr(e.key, length(t.map_column) + 2), e.value)
         from jsonb_each(p_doc) e where e.key like t.map_column || '.%'), '{}'));
  end if;
  cols := cols || jsonb_build_object('account_id', p_account, 'keap_id', p_keap_id,
                                     'keap_object', coalesce(p_raw, 'null'::jsonb));
  select string_agg(format('%I', k), ', ') into collist from jsonb_object_keys(cols) k;
  if id is null then
    execute format('insert into keap.%I (%s) select %s from jsonb_populate_record(null::keap.%I, $1) returning id',
                   t.table_name, collist, collist, t.table_name)
      into id using cols;
  else
    if p_raw is null then  -- keep the Keap object we have; this write is local
      cols := cols - 'keap_object';
      select string_agg(format('%I', k), ', ') into collist from jsonb_object_keys(cols) k;
    end if;
    execute format('update keap.%I set (%s) = (select %s from jsonb_populate_record(null::keap.%I, $1)) where id = $2',
                   t.table_name, collist, collist, t.table_name)
      using cols, id;
  end if;
  if p_type = 'contact' then
    perform keapsync.write_contact_tags(p_account, id, p_doc);
  end if;
  return id;
end;
$$;

-- Make a contact's tag rows match the `tag.<keap id>` keys of its doc. Tags Keap names that we
-- have not fetched yet get a placeholder row, filled in when the tag itself is applied.
create or replace function keapsync.write_contact_tags(p_account uuid, p_contact_id bigint, p_doc jsonb)
returns void
language plpgsql volatile set search_path = ''
as $$
declare
  wanted bigint[] := array(select substr(k, 5)::bigint from jsonb_object_keys(p_doc) k where k like 'tag.%');
begin
  insert into keap.tags (account_id, keap_id)
  select p_account, w from unnest(wanted) w
  on conflict (account_id, keap_id) do nothing;

  delete from keap.contact_tags ct using keap.tags tg
   where ct.contact_id = p_contact_id and tg.id = ct.tag_id and tg.keap_id is not null
     and not (tg.keap_id = any (wanted));

  insert into keap.contact_tags (account_id, contact_id, tag_id)
  select p_account, p_contact_id, tg.id from keap.tags tg
   where tg.account_id = p_account and tg.keap_id = any (wanted)
  on conflict do nothing;
end;
$$;

-- ---------------------------------------------------------------------------------------------
-- Apply a Keap record: idempotent, out-of-order safe, three-way merge.
-- Returns what happened: inserted | updated | unchanged | duplicate | stale | deleted_locally.
-- ---------------------------------------------------------------------------------------------
create or replace function keapsync.apply_keap_record(p_account uuid, p_type text, p_raw jsonb)
returns text
language plpgsql volatile security definer set search_path = '' set timezone to 'UTC'
as $$
declare
  t keapsync.object_types;
  v_keap_id bigint := (p_raw ->> 'id')::bigint;
  v_modified timestamptz := keapsync.keap_modified(p_type, p_raw);
  st keapsync.sync_state;
  v_local_id bigint;
  kdoc jsonb;
  kmerged jsonb;
  unknown text[];
  ldoc jsonb;
  agreed jsonb;
  new_local jsonb;
  new_agreed jsonb;
  k text;
  kv jsonb; lv jsonb; av jsonb;
  pol text;
  local_at timestamptz;
  open_conflict keapsync.conflicts;
begin
  perform keapsync.require_admin(p_account);
  select * into t from keapsync.object_types where object_type = p_type;
  if not found then
    raise exception 'keapsync: unknown object type %', p_type using errcode = '22023';
  end if;
  if v_keap_id is null then
    raise exception 'keapsync: % from Keap has no id', p_type using errcode = '22023';
  end if;
  perform keapsync.set_origin('keap');
  -- Serialise concurrent applies of one record (a hook and a reconcile may race).
  perform pg_advisory_xact_lock(hashtextextended(p_account::text || '/' || p_type || '/' || v_keap_id, 0));

  -- Lock order: the local row, then its sync state, as a local edit takes them (the row, then
  -- its trigger's sync_state update), so an apply and an edit of one record cannot deadlock.
  select s.local_id into v_local_id from keapsync.sync_state s
   where s.account_id = p_account and s.object_type = p_type and s.keap_id = v_keap_id;
  if v_local_id is not null then
    execute format('select 1 from keap.%I where id = $1 for update', t.table_name) using v_local_id;
  end if;
  select * into st from keapsync.sync_state
   where account_id = p_account and object_type = p_type and keap_id = v_keap_id for update;
  if found and st.keap_modified is not null and v_modified is not null and v_modified <= st.keap_modified then
    return case when v_modified = st.keap_modified then 'duplicate' else 'stale' end;
  end if;
  if found and st.local_deleted_at is not null then
    -- Deleted here and the delete awaits push: the delete wins; remember Keap's version only.
    update keapsync.sync_state set keap_modified = v_modified where account_id = st.account_id
       and object_type = st.object_type and local_id = st.local_id;
    return 'deleted_locally';
  end if;

  kdoc := keapsync.keap_doc(p_type, p_raw);
  -- Keap's merged fields: the agreed state of a record first met here.
  kmerged := (select coalesce(jsonb_object_agg(e.key, e.value), '{}') from jsonb_each(kdoc) e
               where keapsync.is_merge_key(t, e.key));
  unknown := keapsync.keap_unknown(p_type, p_raw);

  if st.local_id is null then
    execute format('select id from keap.%I where account_id = $1 and keap_id = $2', t.table_name)
      into v_local_id using p_account, v_keap_id;
    if v_local_id is null then
      v_local_id := keapsync.write_row(p_account, p_type, null, v_keap_id, kdoc, p_raw);
      insert into keapsync.sync_state (account_id, object_type, local_id, keap_id, agreed, keap_modified, last_applied_at)
      values (p_account, p_type, v_local_id, v_keap_id,
              kmerged,
              v_modified, now());
      return 'inserted';
    end if;
    -- A row that names this Keap id but was never synced: Keap's values are the truth.
    ldoc := keapsync.row_doc(p_type, v_local_id);
    agreed := ldoc;
    insert into keapsync.sync_state (account_id, object_type, local_id, keap_id)
    values (p_account, p_type, v_local_id, v_keap_id)
    on conflict (account_id, object_type, local_id) do update set keap_id = excluded.keap_id
    returning * into st;
  else
    v_local_id := st.local_id;
    ldoc := keapsync.row_doc(p_type, v_local_id);
    agreed := st.agreed;
    if ldoc is null then  -- the row is gone without a pending delete: bring it back from Keap
      v_local_id := keapsync.write_row(p_account, p_type, null, v_keap_id, kdoc, p_raw);
      update keapsync.sync_state set local_id = v_local_id,
             agreed = kmerged,
             keap_modified = v_modified, last_applied_at = now()
       where account_id = st.account_id and object_type = st.object_type and local_id = st.local_id;
      return 'inserted';
    end if;
  end if;

  new_local := ldoc;
  new_agreed := agreed;
  for k in
    select key from jsonb_object_keys(kdoc || ldoc || agreed) key
  loop
    if not keapsync.is_merge_key(t, k) then
      -- Keap-owned: Keap's value, always.
      new_local := case when kdoc ? k then jsonb_set(new_local, array[k], kdoc -> k) else new_local - k end;
      continue;
    end if;
    av := agreed -> k;
    lv := ldoc -> k;
    -- What the object did not carry is unknown, not removed: treat it as unchanged.
    kv := case when exists (select 1 from unnest(unknown) u
                             where k = u or (u like '%.' and starts_with(k, u)))
               then av else kdoc -> k end;

    select * into open_conflict from keapsync.conflicts
     where account_id = p_account and object_type = p_type and local_id = v_local_id
       and field = k and status = 'open';

    if kv is not distinct from lv then
      new_agreed := keapsync.doc_set(new_agreed, k, kv);
      if open_conflict.id is not null then
        update keapsync.conflicts set status = 'resolved', resolution = 'converged', resolved_value = kv,
               resolved_at = now() where id = open_conflict.id;
      end if;
    elsif kv is not distinct from av then
      null;  -- changed only here: keep, it stays pending for push
    elsif lv is not distinct from av then
      new_local := keapsync.doc_set(new_local, k, kv);  -- changed only in Keap: apply
      new_agreed := keapsync.doc_set(new_agreed, k, kv);
    elsif open_conflict.id is not null then
      -- Still parked: keep the newest Keap value beside it for whoever resolves it.
      update keapsync.conflicts set keap_value = kv, keap_modified = v_modified where id = open_conflict.id;
    else
      pol := keapsync.policy_for(p_account, p_type, k);
      if pol = 'newest_wins' then
        local_at := (st.local_changed_at ->> k)::timestamptz;
        pol := case when local_at is not null and (v_modified is null or local_at > v_modified)
                    then 'local_wins' else 'keap_wins' end;
      end if;
      insert into keapsync.conflicts (account_id, object_type, local_id, keap_id, field, base_value,
                                      local_value, keap_value, keap_modified, policy, status, resolution,
                                      resolved_value, resolved_at)
      values (p_account, p_type, v_local_id, v_keap_id, k, av, lv, kv, v_modified,
              keapsync.policy_for(p_account, p_type, k),
              case when pol = 'manual' then 'open' else 'resolved' end,
              case pol when 'keap_wins' then 'keap' when 'local_wins' then 'local' end,
              case pol when 'keap_wins' then kv when 'local_wins' then lv end,
              case when pol = 'manual' then null else now() end);
      if pol = 'keap_wins' then
        new_local := keapsync.doc_set(new_local, k, kv);
        new_agreed := keapsync.doc_set(new_agreed, k, kv);
      elsif pol = 'local_wins' then
        new_agreed := keapsync.doc_set(new_agreed, k, kv);  -- Keap holds kv; ours stays pending
      end if;
    end if;
  end loop;

  if new_local is distinct from ldoc or
     p_raw is distinct from (select x.keap_object from keapsync.keap_object_of(p_type, v_local_id) x) then
    perform keapsync.write_row(p_account, p_type, v_local_id, v_keap_id, new_local, p_raw);
  end if;
  update keapsync.sync_state
     set agreed = new_agreed, keap_modified = coalesce(v_modified, keap_modified), last_applied_at = now()
   where account_id = p_account and object_type = p_type and local_id = v_local_id;
  -- 'updated' when data changed, not merely Keap's version clock.
  return case when (new_local - array['last_updated', 'modification_date', 'modification_time'])
                   is distinct from (ldoc - array['last_updated', 'modification_date', 'modification_time'])
              then 'updated' else 'unchanged' end;
end;
$$;

create or replace function keapsync.doc_set(p_doc jsonb, p_key text, p_value jsonb) returns jsonb
language sql immutable set search_path = ''
as $$
  select case when p_value is null or jsonb_typeof(p_value) = 'null' then p_doc - p_key
              else p_doc || jsonb_build_object(p_key, p_value) end;
$$;

create or replace function keapsync.keap_object_of(p_type text, p_local_id bigint)
returns table (keap_object jsonb)
language plpgsql stable set search_path = ''
as $$
begin
  return query execute format('select keap_object from keap.%I where id = $1',
    (select table_name from keapsync.object_types where object_type = p_type)) using p_local_id;
end;
$$;

-- Apply a batch (a page from backfill or reconcile): one call, one transaction.
create or replace function keapsync.apply_keap_records(p_account uuid, p_type text, p_raws jsonb)
returns table (keap_id bigint, outcome text)
language sql volatile security definer set search_path = ''
as $$
  select (r ->> 'id')::bigint, keapsync.apply_keap_record(p_account, p_type, r)
    from jsonb_array_elements(p_raws) r;
$$;

-- Keap deleted a record: remove it here (history keeps it).
create or replace function keapsync.apply_keap_delete(p_account uuid, p_type text, p_keap_id bigint)
returns text
language plpgsql volatile security definer set search_path = ''
as $$
declare
  tbl text := (select table_name from keapsync.object_types where object_type = p_type);
  n integer;
begin
  perform keapsync.require_admin(p_account);
  if tbl is null then
    raise exception 'keapsync: unknown object type %', p_type using errcode = '22023';
  end if;
  perform keapsync.set_origin('keap');
  perform pg_advisory_xact_lock(hashtextextended(p_account::text || '/' || p_type || '/' || p_keap_id, 0));
  delete from keapsync.sync_state where account_id = p_account and object_type = p_type and keap_id = p_keap_id;
  execute format('delete from keap.%I where account_id = $1 and keap_id = $2', tbl) using p_account, p_keap_id;
  get diagnostics n = row_count;
  update keapsync.conflicts set status = 'resolved', resolution = 'keap', resolved_at = now()
   where account_id = p_account and object_type = p_type and keap_id = p_keap_id and status = 'open';
  return case when n > 0 then 'deleted' else 'absent' end;
end;
$$;

-- ---------------------------------------------------------------------------------------------
-- Push: what must go to Keap for a record, and marking it done.
-- ---------------------------------------------------------------------------------------------

-- {"op": "create"|"update"|"delete"|"none", "keap_id", "fields": {field: value, ...},
--  "cleared": [field, ...]} -- fields whose local value differs from the agreed one, except
-- those parked as manual conflicts.
create or replace function keapsync.pending_push(p_account uuid, p_type text, p_local_id bigint)
returns jsonb
language plpgsql stable security definer set search_path = '' set timezone to 'UTC'
as $$
declare
  t keapsync.object_types;
  st keapsync.sync_state;
  ldoc jsonb;
  k text;
  fields jsonb := '{}';
  cleared text[] := '{}';
begin
  perform keapsync.require_admin(p_account);
  select * into strict t from keapsync.object_types where object_type = p_type;
  select * into st from keapsync.sync_state
   where account_id = p_account and object_type = p_type and local_id = p_local_id;
  if st.local_deleted_at is not null then
    return jsonb_build_object('op', 'delete', 'keap_id', st.keap_id, 'fields', '{}'::jsonb, 'cleared', '[]'::jsonb);
  end if;
  ldoc := keapsync.row_doc(p_type, p_local_id);
  if ldoc is null then
    return jsonb_build_object('op', 'none', 'keap_id', st.keap_id, 'fields', '{}'::jsonb, 'cleared', '[]'::jsonb);
  end if;
  for k in select key from jsonb_object_keys(ldoc || coalesce(st.agreed, '{}')) key loop
    continue when not keapsync.is_merge_key(t, k);
    continue when (ldoc -> k) is not distinct from (st.agreed -> k);
    continue when exists (select 1 from keapsync.conflicts c where c.account_id = p_account
                            and c.object_type = p_type and c.local_id = p_local_id
                            and c.field = k and c.status = 'open');
    if ldoc ? k then
      fields := fields || jsonb_build_object(k, ldoc -> k);
    else
      cleared := cleared || k;
    end if;
  end loop;
  return jsonb_build_object(
    'op', case when st.keap_id is null then 'create'
               when fields = '{}' and cardinality(cleared) = 0 then 'none' else 'update' end,
    'keap_id', st.keap_id, 'fields', fields, 'cleared', to_jsonb(cleared));
end;
$$;

-- Keap accepted a push. p_pushed holds the fields sent ({field: value}, null for cleared ones);
-- p_keap_raw is the object Keap answered with (null after a delete). The pushed values become
-- agreed, then Keap's answer is applied like any Keap version, so a field someone edited here
-- again while the call was in flight stays pending instead of turning into a conflict.
create or replace function keapsync.mark_pushed(
  p_account uuid, p_type text, p_local_id bigint, p_pushed jsonb, p_keap_raw jsonb)
returns text
language plpgsql volatile security definer set search_path = '' set timezone to 'UTC'
as $$
declare
  st keapsync.sync_state;
  tbl text := (select table_name from keapsync.object_types where object_type = p_type);
  v_keap_id bigint := (p_keap_raw ->> 'id')::bigint;
  v_twin bigint;
  e record;
begin
  perform keapsync.require_admin(p_account);
  perform keapsync.set_origin('keap');
  select * into st from keapsync.sync_state
   where account_id = p_account and object_type = p_type and local_id = p_local_id for update;
  if not found then
    raise exception 'keapsync: no sync state for % %', p_type, p_local_id using errcode = 'P0002';
  end if;
  if st.local_deleted_at is not null and p_keap_raw is null then
    delete from keapsync.sync_state where account_id = p_account and object_type = p_type and local_id = p_local_id;
    return 'deleted';
  end if;
  if v_keap_id is null then
    raise exception 'keapsync: Keap answer for % % has no id', p_type, p_local_id using errcode = '22023';
  end if;
  if st.keap_id is null then
    -- The create reached Keap before, but its write-back was lost (a crash, a dropped
    -- connection), and a hook meanwhile imported the Keap record as a new row: that row is this
    -- record's twin. Ours keeps its id and data; the twin goes (as Keap's write: not pushed).
    execute format('select id from keap.%I where account_id = $1 and keap_id = $2 and id <> $3', tbl)
      into v_twin using p_account, v_keap_id, p_local_id;
    if v_twin is not null then
      delete from keapsync.sync_state where account_id = p_account and object_type = p_type and local_id = v_twin;
      execute format('delete from keap.%I where id = $1', tbl) using v_twin;
    end if;
    execute format('update keap.%I set keap_id = $1 where id = $2', tbl) using v_keap_id, p_local_id;
  end if;
  for e in select key, value from jsonb_each(coalesce(p_pushed, '{}')) loop
    st.agreed := keapsync.doc_set(st.agreed, e.key, e.value);
  end loop;
  update keapsync.sync_state set keap_id = v_keap_id, agreed = st.agreed, last_pushed_at = now()
   where account_id = p_account and object_type = p_type and local_id = p_local_id;
  return keapsync.apply_keap_record(p_account, p_type, p_keap_raw);
end;
$$;
