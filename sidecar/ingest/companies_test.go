package ingest_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/keapsync/keapsync/sidecar/ingest"
)

// Companies arrive by backfill and hooks (create, edit, delete as a person in Keap), a dropped
// hook is caught by reconcile and the delete sweep, and a contact's company is a reference.
func TestCompaniesArrive(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 3)
	ctx := context.Background()
	acme, err := w.sb.CreateCompany(map[string]any{"company_name": "Acme", "website": "https://acme.io",
		"email_address": map[string]any{"email": "hi@acme.io", "field": "EMAIL1"},
		"address":       map[string]any{"line1": "1 Main St", "locality": "Mesa", "region": "AZ", "postal_code": "85201", "country_code": "USA"}})
	if err != nil {
		t.Fatal(err)
	}
	member, err := w.sb.CreateContact(map[string]any{"given_name": "Emp", "phone_numbers": []map[string]string{{"number": "555-0101", "field": "PHONE1"}}, "company": map[string]any{"id": acme}})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.sweeper.Backfill(ctx, w.account, ingest.ObjectTypes); err != nil {
		t.Fatal(err)
	}
	if got := w.count(t, `select count(*) from keap.companies where keap_id = $1 and company_name = 'Acme' and email = 'hi@acme.io'
	    and website = 'https://acme.io' and locality = 'Mesa' and postal_code = '85201' and update_time is not null`, acme); got != 1 {
		t.Fatal("the backfilled company is not here as Keap has it")
	}
	if got := w.count(t, `select count(*) from keap.contacts c join keap.companies co on co.account_id = c.account_id and co.keap_id = c.company_keap_id
	    where c.keap_id = $1 and co.company_name = 'Acme'`, member); got != 1 {
		t.Error("the contact does not refer to its company")
	}
	if _, err := ingest.EnsureHooks(ctx, w.db, w.api, w.account, w.hooks.URL); err != nil {
		t.Fatal(err)
	}

	// A person creates, edits and deletes companies in Keap.
	created, err := w.sb.CreateCompany(map[string]any{"company_name": "Globex"})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.sb.EditCompany(acme, map[string]any{"company_name": "Acme Corp", "notes": "renamed"}); err != nil {
		t.Fatal(err)
	}
	doomed, err := w.sb.CreateCompany(map[string]any{"company_name": "Initech"})
	if err != nil {
		t.Fatal(err)
	}
	w.settle(t)
	if err := w.sb.DeleteCompany(doomed); err != nil {
		t.Fatal(err)
	}
	w.settle(t)
	if got := w.count(t, `select count(*) from keap.companies where keap_id = $1 and company_name = 'Globex'`, created); got != 1 {
		t.Error("the new company did not arrive")
	}
	if got := w.count(t, `select count(*) from keap.companies where keap_id = $1 and company_name = 'Acme Corp' and notes = 'renamed'`, acme); got != 1 {
		t.Error("the edit did not arrive")
	}
	if got := w.count(t, `select count(*) from keap.companies where keap_id = $1`, doomed); got != 0 {
		t.Error("the deleted company is still here")
	}
	if got := w.count(t, `select count(*) from keapsync.change_history where table_name = 'companies' and origin = 'keap'`); got < 4 {
		t.Errorf("%d history rows for companies", got)
	}

	// Hooks lost: reconcile and the delete sweep catch up.
	if _, err := w.db.Exec(ctx, `delete from keapsync.hook_subscriptions`); err != nil {
		t.Fatal(err)
	}
	for _, h := range w.sb.Hooks() {
		if err := w.api.DeleteHook(ctx, h.Key); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.sb.EditCompany(created, map[string]any{"website": "https://globex.example"}); err != nil {
		t.Fatal(err)
	}
	if err := w.sb.DeleteCompany(acme); err != nil {
		t.Fatal(err)
	}
	if err := w.sweeper.Reconcile(ctx, w.account, []string{"company"}); err != nil {
		t.Fatal(err)
	}
	if got := w.count(t, `select count(*) from keap.companies where keap_id = $1 and website = 'https://globex.example'`, created); got != 1 {
		t.Error("reconcile did not catch the edit whose hook was lost")
	}
	w.sweptAway(t, "company", "companies", acme)
	if got := w.count(t, `select count(*) from keap.contacts where keap_id = $1 and company_keap_id is null
	    and (keap_object -> 'company' ->> 'id')::bigint = $2`, member, acme); got != 1 {
		t.Error("the contact of the deleted company is still linked, or lost Keap's id of it")
	}
}

// A backfill that brings contacts before their companies (pages of two, so the links are made
// across pages) stores every contact at once, unlinked, and ends with every contact linked to
// the company its Keap object names.
func TestBackfillContactsBeforeCompanies(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 3)
	ctx := context.Background()
	w.sweeper.PageSize = 2
	var companies []int64
	for _, name := range []string{"Acme", "Globex", "Initech"} {
		id, err := w.sb.CreateCompany(map[string]any{"company_name": name})
		if err != nil {
			t.Fatal(err)
		}
		companies = append(companies, id)
	}
	for i := range 7 {
		if _, err := w.sb.CreateContact(map[string]any{"given_name": fmt.Sprintf("Emp%d", i),
			"email_addresses": []map[string]string{{"email": fmt.Sprintf("emp%d@example.com", i), "field": "EMAIL1"}},
			"company":         map[string]any{"id": companies[i%len(companies)]}}); err != nil {
			t.Fatal(err)
		}
	}
	naming := `select count(*) from keap.contacts where keap_object -> 'company' ->> 'id' is not null`
	if err := w.sweeper.Backfill(ctx, w.account, []string{"contact"}); err != nil {
		t.Fatal(err)
	}
	if got := w.count(t, naming); got != 7 {
		t.Fatalf("%d contacts naming a company arrived before their companies, want 7", got)
	}
	if got := w.count(t, `select count(*) from keap.contacts where company_keap_id is not null`); got != 0 {
		t.Errorf("%d contacts are linked to companies that are not here", got)
	}
	if err := w.sweeper.Backfill(ctx, w.account, []string{"company"}); err != nil {
		t.Fatal(err)
	}
	if got := w.count(t, `select count(*) from keap.contacts c join keap.companies co
	    on co.account_id = c.account_id and co.keap_id = c.company_keap_id
	    where c.account_id = $1 and c.keap_object -> 'company' ->> 'id' = co.keap_id::text`, w.account); got != 7 {
		t.Errorf("%d of 7 contacts linked to their company after the companies arrived", got)
	}
}

// settle lets the sandbox deliver its hooks and the worker apply them.
func (w *world) settle(t *testing.T) {
	t.Helper()
	w.sb.FlushHooks()
	if err := w.sb.WaitHooksIdle(context.Background()); err != nil {
		t.Fatal(err)
	}
	w.worker.Window = 0
	w.drain(t)
}

// A company and a contact naming it applied at the same moment, in two transactions that cannot
// see each other's rows, end linked whichever commits first: the contact that finds no company
// waits for the company's link step, or the link step for the contact.
func TestCompanyLinkConcurrent(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 1)
	ctx := context.Background()
	const apply = `select keapsync.apply_keap_record($1, $2, $3::jsonb)`
	company := func(id int) string {
		return fmt.Sprintf(`{"id": %d, "company_name": "Co %d", "update_time": "2026-01-01T00:00:00Z"}`, id, id)
	}
	contact := func(id, company int) string {
		return fmt.Sprintf(`{"id": %d, "given_name": "C", "company": {"id": %d}, "last_updated": "2026-01-01T00:00:00Z"}`, id, company)
	}
	for _, tc := range []struct {
		name                  string
		firstType, secondType string
		first, second         string
	}{
		{"company first", "company", "contact", company(9001), contact(9101, 9001)},
		{"contact first", "contact", "company", contact(9102, 9002), company(9002)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			first, err := w.db.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer first.Rollback(ctx)
			if _, err := first.Exec(ctx, apply, w.account, tc.firstType, tc.first); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() {
				_, err := w.db.Exec(ctx, apply, w.account, tc.secondType, tc.second)
				done <- err
			}()
			// The second waits for the first's lock (a plain insert would not wait, and miss).
			for {
				var waiting bool
				if err := w.db.QueryRow(ctx, `select exists (select 1 from pg_stat_activity
				    where datname = current_database() and wait_event_type = 'Lock' and wait_event = 'advisory'
				      and query like '%apply_keap_record%')`).Scan(&waiting); err != nil {
					t.Fatal(err)
				}
				if waiting {
					break
				}
				select {
				case err := <-done:
					t.Fatalf("the second apply did not wait for the first (err %v)", err)
				case <-time.After(time.Millisecond): // look again
				}
			}
			if err := first.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if got := w.count(t, `select count(*) from keap.contacts c join keap.companies co
			    on co.account_id = c.account_id and co.keap_id = c.company_keap_id
			    where c.account_id = $1 and c.keap_id in (9101, 9102)`, w.account); got != map[string]int{"company first": 1, "contact first": 2}[tc.name] {
				t.Errorf("%d contacts linked", got)
			}
		})
	}
}
