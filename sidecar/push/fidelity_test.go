package push_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/keapsync/keapsync/sidecar/keap"
	"github.com/keapsync/keapsync/sidecar/sandbox"
)

// profiles are the sandbox behaviours the push suite must be right under.
var profiles = map[string]sandbox.Profile{
	"documented":   {},
	"hardest":      mustProfile("hardest"),
	"merges lists": {PatchMergesLists: true},
}

func mustProfile(name string) sandbox.Profile {
	p, err := sandbox.ParseProfile(name)
	if err != nil {
		panic(err)
	}
	return p
}

// underProfiles runs a key end-to-end case under the documented and the hardest sandbox
// profile: keapsync must be right whichever way Keap answers what its documents leave open.
func underProfiles(t *testing.T, f func(*testing.T, sandbox.Profile)) {
	for _, name := range []string{"documented", "hardest"} {
		t.Run(name, func(t *testing.T) { f(t, profiles[name]) })
	}
}

// profileOptions are newWorld's sandbox options under a profile.
func profileOptions(contacts int, profile sandbox.Profile) sandbox.Options {
	return sandbox.Options{Seed: 11, Contacts: contacts, Unthrottled: true, Limits: roomy, Profile: profile}
}

func (w *world) lists(kid int64) (emails, phones, addresses []map[string]any) {
	w.t.Helper()
	c := w.contact(kid)
	var raw struct {
		Emails    []map[string]any `json:"email_addresses"`
		Phones    []map[string]any `json:"phone_numbers"`
		Addresses []map[string]any `json:"addresses"`
	}
	if err := json.Unmarshal(c.Raw, &raw); err != nil {
		w.t.Fatal(err)
	}
	return raw.Emails, raw.Phones, raw.Addresses
}

func byField(items []map[string]any, field, key string) any {
	for _, it := range items {
		if it["field"] == field {
			return it[key]
		}
	}
	return nil
}

// A push never destroys Keap data keapsync does not model: changing the primary phone, email
// and billing address here keeps PHONE2-PHONE5, EMAIL2-EMAIL3 and SHIPPING/OTHER in Keap, whether
// v1 PATCH replaces lists or merges them, with and without the fetch before an update.
func TestPushKeepsKeapListColumns(t *testing.T) {
	t.Parallel()
	for name, profile := range profiles {
		for _, fetch := range []bool{true, false} {
			t.Run(name+map[bool]string{true: "/fetch first", false: "/no fetch first"}[fetch], func(t *testing.T) {
				w := newWorldWith(t, profileOptions(4, profile))
				id, kid := w.synced(0)
				// Someone in Keap fills the columns keapsync does not model.
				err := w.sb.EditContact(kid, map[string]any{
					"email_addresses": []any{
						map[string]any{"field": "EMAIL1", "email": "one@example.com"},
						map[string]any{"field": "EMAIL2", "email": "two@example.com"},
						map[string]any{"field": "EMAIL3", "email": "three@example.com"}},
					"phone_numbers": []any{
						map[string]any{"field": "PHONE1", "number": "555-0001"},
						map[string]any{"field": "PHONE2", "number": "555-0002"},
						map[string]any{"field": "PHONE5", "number": "555-0005"}},
					"addresses": []any{
						map[string]any{"field": "BILLING", "line1": "1 Bill St", "country_code": "USA"},
						map[string]any{"field": "SHIPPING", "line1": "2 Ship St", "country_code": "USA"},
						map[string]any{"field": "OTHER", "line1": "3 Other St", "country_code": "USA"}},
				})
				if err != nil {
					t.Fatal(err)
				}
				cfg := w.config(nil)
				cfg.FetchBeforeUpdate = fetch
				w.start(w.pusher(cfg).Run)
				w.quiet()
				w.exec(`update keap.contacts set phone = '555-9999', email = 'new@example.com', address_line1 = '9 New Rd' where id = $1`, id)
				w.quiet()
				emails, phones, addrs := w.lists(kid)
				if byField(phones, "PHONE1", "number") != "555-9999" || byField(phones, "PHONE2", "number") != "555-0002" ||
					byField(phones, "PHONE5", "number") != "555-0005" {
					t.Errorf("phones in Keap: %v", phones)
				}
				if byField(emails, "EMAIL1", "email") != "new@example.com" || byField(emails, "EMAIL2", "email") != "two@example.com" ||
					byField(emails, "EMAIL3", "email") != "three@example.com" {
					t.Errorf("emails in Keap: %v", emails)
				}
				if byField(addrs, "BILLING", "line1") != "9 New Rd" || byField(addrs, "SHIPPING", "line1") != "2 Ship St" ||
					byField(addrs, "OTHER", "line1") != "3 Other St" {
					t.Errorf("addresses in Keap: %v", addrs)
				}
			})
		}
	}
}

// Clearing a field here clears it in Keap whether Keap applies a null or ignores it.
func TestPushClearsUnderEitherNullSemantics(t *testing.T) {
	t.Parallel()
	for name, profile := range map[string]sandbox.Profile{"null clears": {}, "null ignored": {NullIgnored: true}} {
		t.Run(name, func(t *testing.T) {
			w := newWorldWith(t, profileOptions(4, profile))
			id, kid := w.synced(1)
			if n := w.int(`select count(*) from keap.contacts where id = $1 and job_title <> '' and family_name <> ''`, id); n != 1 {
				t.Fatal("the generated contact should have a job title and family name to clear")
			}
			w.start(w.pusher(w.config(nil)).Run)
			w.quiet()
			w.exec(`update keap.contacts set job_title = null, family_name = null where id = $1`, id)
			w.quiet()
			c := w.contact(kid)
			if c.JobTitle != "" || c.FamilyName != "" {
				t.Errorf("in Keap after clearing here: job_title %q, family_name %q", c.JobTitle, c.FamilyName)
			}
			if n := w.int(`select count(*) from keap.contacts where id = $1 and job_title is null and family_name is null`, id); n != 1 {
				t.Error("the local clear did not stay")
			}
		})
	}
}

// A route-level 404 (Keap's contact routes retired, or KEAP_API_URL wrong) stops the push with
// keap.ErrRouteNotFound: the contact is not taken for deleted in Keap, nothing is parked, the
// change stays queued; with the route back it goes out.
func TestPushRouteNotFoundDeletesNothing(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 4)
	id, kid := w.synced(2)
	p := w.pusher(w.config(nil))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	w.enqueued() // the slot is there: the edit below is seen
	f := w.sb.Faults()
	f.RetiredRoutes = []string{"GET /crm/rest/v1/contacts/{id}", "PATCH /crm/rest/v1/contacts/{id}"}
	w.sb.SetFaults(f)
	w.exec(`update keap.contacts set given_name = 'Routed' where id = $1`, id)
	if err := <-done; !errors.Is(err, keap.ErrRouteNotFound) {
		t.Fatalf("push run: %v, want it to stop with keap.ErrRouteNotFound", err)
	}
	if n := w.int(`select count(*) from keap.contacts where id = $1 and keap_id = $2 and given_name = 'Routed'`, id, kid); n != 1 {
		t.Fatal("the contact was taken for deleted in Keap")
	}
	if n := w.int(`select count(*) from keapsync.dead_letters`); n != 0 {
		t.Fatalf("%d dead letters for a configuration error", n)
	}
	if n := w.int(`select count(*) from keapsync.push_queue where local_id = $1`, id); n != 1 {
		t.Fatal("the change left the queue")
	}
	f.RetiredRoutes = nil
	w.sb.SetFaults(f)
	w.start(w.pusher(w.config(nil)).Run)
	w.quiet()
	if c := w.contact(kid); c.GivenName != "Routed" {
		t.Errorf("in Keap after the route came back: %q", c.GivenName)
	}
}

// Marketable email: a contact created here with consent recorded is created in Keap with
// opt_in_reason (Keap then reports it SingleOptIn); without consent it is not.
func TestCreateCarriesEmailConsent(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 2)
	w.start(w.pusher(w.config(nil)).Run)
	w.quiet()
	consented := w.int(`insert into keap.contacts (account_id, given_name, email, email_opt_in_reason)
	    values ($1, 'Yes', 'yes@example.com', 'Signed up on the website form') returning id`, w.account)
	silent := w.int(`insert into keap.contacts (account_id, given_name, email) values ($1, 'No', 'no@example.com') returning id`, w.account)
	w.quiet()
	for _, tc := range []struct {
		id        int64
		status    string
		marketing bool
	}{{consented, "SingleOptIn", true}, {silent, "UnengagedNonMarketable", false}} {
		kid := w.int(`select coalesce(keap_id, 0) from keap.contacts where id = $1`, tc.id)
		var raw map[string]any
		if err := json.Unmarshal(w.contact(kid).Raw, &raw); err != nil {
			t.Fatal(err)
		}
		if raw["email_status"] != tc.status || raw["email_opted_in"] != tc.marketing {
			t.Errorf("contact %d in Keap: email_status %v, email_opted_in %v; want %s", tc.id, raw["email_status"], raw["email_opted_in"], tc.status)
		}
		if n := w.int(`select count(*) from keap.contacts where id = $1 and email_status = $2 and email_opted_in = $3`, tc.id, tc.status, tc.marketing); n != 1 {
			t.Errorf("contact %d here does not show Keap's email status %s", tc.id, tc.status)
		}
	}
}
