-- A contact's company becomes a real reference (issue #17): keap.contacts.company_keap_id is a
-- foreign key to keap.companies (account_id, keap_id), without making a contact wait for its
-- company, since Keap does not say which of the two arrives first.
--
--   * The link is null until the company is stored. A contact written on behalf of Keap whose
--     company is not here yet keeps Keap's id in its keap_object (company.id) only; a local write
--     naming a company that is not here is refused by the foreign key, with its message.
--   * Storing a company (or giving a local one its Keap id) links the contacts of its account
--     whose Keap object names it.
--   * A company deleted (in Keap, or here) unlinks its contacts: on delete set null.
--
-- Every lookup is by account: another account's company with the same Keap id never links.
-- The three-way merge is untouched: company_keap_id is Keap-owned (a keap column, never merged or
-- pushed), so whatever fills or clears it is not a change to send back.

-- A contact that names a company not stored (yet, or any more) is linked to nothing. Only an id
-- Keap's object gives is cleared; any other is left for the foreign key to refuse.
--
-- A company and a contact naming it may be applied at the same moment, by two transactions that
-- cannot see each other's rows: the contact would find no company, and the company's link step
-- no contact. So a contact that finds no company waits for the company's link step, if one is
-- running (it holds this lock, exclusively, to its commit), and then looks again; a link step
-- that starts later waits for the contact's transaction, and then sees the contact.
create function keapsync.tg_contact_company() returns trigger
language plpgsql security definer set search_path = ''
as $$
begin
  if new.company_keap_id::text is distinct from (new.keap_object -> 'company' ->> 'id')
     or exists (select 1 from keap.companies co
                 where co.account_id = new.account_id and co.keap_id = new.company_keap_id) then
    return new;
  end if;
  perform pg_advisory_xact_lock_shared(hashtextextended(new.account_id::text || '/company-link/' || new.company_keap_id, 0));
  if not exists (select 1 from keap.companies co
                  where co.account_id = new.account_id and co.keap_id = new.company_keap_id) then
    new.company_keap_id := null;
  end if;
  return new;
end;
$$;
revoke execute on function keapsync.tg_contact_company() from public;

create trigger company_link_insert before insert on keap.contacts
  for each row when (new.company_keap_id is not null)
  execute function keapsync.tg_contact_company();
create trigger company_link_update before update on keap.contacts
  for each row when (new.company_keap_id is not null and new.company_keap_id is distinct from old.company_keap_id)
  execute function keapsync.tg_contact_company();

-- Companies that gained a Keap id in this statement (inserted with one, or a local one that Keap
-- just created) link the contacts of their account that name them and are not linked yet.
create function keapsync.tg_company_links() returns trigger
language plpgsql security definer set search_path = ''
as $$
begin
  -- The lock a contact that found no company waits on (see tg_contact_company), in one order.
  if tg_op = 'INSERT' then
    perform pg_advisory_xact_lock(hashtextextended(n.account_id::text || '/company-link/' || n.keap_id, 0))
       from (select distinct account_id, keap_id from new_rows where keap_id is not null order by 1, 2) n;
    update keap.contacts c set company_keap_id = n.keap_id
      from new_rows n
     where n.keap_id is not null and c.account_id = n.account_id and c.company_keap_id is null
       and c.keap_object -> 'company' ->> 'id' = n.keap_id::text;
  else
    perform pg_advisory_xact_lock(hashtextextended(n.account_id::text || '/company-link/' || n.keap_id, 0))
       from (select distinct n.account_id, n.keap_id from new_rows n join old_rows o on o.id = n.id
              where n.keap_id is not null and n.keap_id is distinct from o.keap_id order by 1, 2) n;
    update keap.contacts c set company_keap_id = n.keap_id
      from new_rows n join old_rows o on o.id = n.id
     where n.keap_id is not null and n.keap_id is distinct from o.keap_id
       and c.account_id = n.account_id and c.company_keap_id is null
       and c.keap_object -> 'company' ->> 'id' = n.keap_id::text;
  end if;
  return null;
end;
$$;
revoke execute on function keapsync.tg_company_links() from public;

create trigger link_contacts_insert after insert on keap.companies referencing new table as new_rows
  for each statement execute function keapsync.tg_company_links();
create trigger link_contacts_update after update on keap.companies referencing old table as old_rows new table as new_rows
  for each statement execute function keapsync.tg_company_links();

-- The contacts waiting for their company, by the company's Keap id as Keap's object gives it:
-- what the link above looks up (few rows: only contacts whose company is not here).
create index contacts_awaiting_company_idx on keap.contacts (account_id, (keap_object -> 'company' ->> 'id'))
  where company_keap_id is null and keap_object -> 'company' ->> 'id' is not null;

-- The rows as they are: a contact naming a company that is not here is unlinked, one whose
-- company is here is linked, both as Keap's doing (what Keap's objects say, nothing to push).
select keapsync.set_origin('keap');
update keap.contacts c set company_keap_id = null
 where c.company_keap_id is not null
   and not exists (select 1 from keap.companies co where co.account_id = c.account_id and co.keap_id = c.company_keap_id);
update keap.contacts c set company_keap_id = co.keap_id
  from keap.companies co
 where c.company_keap_id is null and co.account_id = c.account_id
   and c.keap_object -> 'company' ->> 'id' = co.keap_id::text;
select keapsync.set_origin('');

alter table keap.contacts add constraint contacts_company_fkey
  foreign key (account_id, company_keap_id) references keap.companies (account_id, keap_id)
  on delete set null (company_keap_id);
