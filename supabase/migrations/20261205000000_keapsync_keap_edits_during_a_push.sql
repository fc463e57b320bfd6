-- Two Keap edits made while one of our pushes was out were lost; mark_pushed now keeps both.
--
-- 1. A Keap edit that wins its field while our PATCH is on its way was lost on Keap's side. The
--    chaos soak (profile "hardest", seed 2) ended with a contact whose phone was "L84" in Keap
--    and "K370" here:
--      a. the pusher sent PATCH phone=L84 (a local edit);
--      b. meanwhile the Keap edit phone=K370, newer than the local edit, came in by hook; the
--         merge gave it the field (newest_wins), so the row said K370;
--      c. Keap answered the PATCH: phone L84 (Keap took our write after its own edit);
--      d. mark_pushed set the agreed phone to L84, the value sent, and applied the answer, which
--         changes nothing against that agreed state. The row kept K370, the agreed state said
--         L84, and the queue row was removed: no change in the stream was left to queue K370.
--    Now mark_pushed looks, for each field it sent, whether the row moved away both from the
--    value sent and from the agreed state. Where it did, the record is queued again, as any
--    change would queue it: the queue row is due at once, so the worker's dequeue finds it
--    changed and leaves it, and the next push sends the row's value. Keap then ends where the
--    merge decided, here K370.
--
-- 2. A Keap edit of a record we just created was lost here. When the create's write-back was
--    lost or had not come yet, the edit's hook imported the record as a new row, a twin, which
--    mark_pushed drops in favour of ours, and the create's answer, older than the edit, was all
--    that was applied. Now dropping a twin queues a read of the record in the inbox (as an
--    equal-stamp tie does), and Keap's current version is merged when it comes.
create or replace function keapsync.mark_pushed(p_account uuid, p_type text, p_local_id bigint, p_pushed jsonb, p_keap_raw jsonb)
returns text
language plpgsql volatile security definer set search_path = '' set timezone to 'UTC'
as $$
declare
  st keapsync.sync_state;
  tbl text := (select table_name from keapsync.object_types where object_type = p_type);
  v_keap_id bigint := (p_keap_raw ->> 'id')::bigint;
  v_twin bigint;
  e record;
  v_outcome text;
  v_doc jsonb;
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
      execute format('delete from keap.%I where id = $1 and account_id = $2', tbl) using v_twin, p_account;
      -- The twin may hold a Keap edit newer than the create's answer (the hook that imported it
      -- was for that edit): read the record again, after this, rather than lose it.
      insert into keapsync.webhook_inbox (account_id, event_key, object_type, object_ids, payload)
      select p_account, p_type || '.recheck', p_type, array[v_keap_id], '{}'
       where not exists (select 1 from keapsync.webhook_inbox i
                          where i.account_id = p_account and i.object_type = p_type
                            and i.processed_at is null and v_keap_id = any (i.object_ids));
    end if;
    execute format('update keap.%I set keap_id = $1 where id = $2 and account_id = $3', tbl)
      using v_keap_id, p_local_id, p_account;
  end if;
  for e in select key, value from jsonb_each(coalesce(p_pushed, '{}')) loop
    st.agreed := keapsync.doc_set(st.agreed, e.key, e.value);
  end loop;
  update keapsync.sync_state set keap_id = v_keap_id, agreed = st.agreed, last_pushed_at = now()
   where account_id = p_account and object_type = p_type and local_id = p_local_id;
  v_outcome := keapsync.apply_keap_record(p_account, p_type, p_keap_raw);
  -- A sent field the row no longer holds (a Keap version merged in while the call was out won
  -- it) is a change still to push. Both tests: a row that still holds what was sent has nothing
  -- new to send, whatever the agreed state says, so a push never queues itself again for good.
  if p_pushed is not null and p_pushed <> '{}' then
    v_doc := keapsync.row_doc(p_account, p_type, p_local_id);
    select agreed into st.agreed from keapsync.sync_state
     where account_id = p_account and object_type = p_type and local_id = p_local_id;
    if v_doc is not null and exists (select 1 from jsonb_each(p_pushed) s(key, value)
                                      where (v_doc -> s.key) is distinct from s.value
                                        and (v_doc -> s.key) is distinct from (st.agreed -> s.key)) then
      perform keapsync.enqueue_push(p_account, p_type, p_local_id, pg_catalog.pg_current_wal_lsn());
    end if;
  end if;
  return v_outcome;
end;
$$;
