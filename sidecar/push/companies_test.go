package push_test

import (
	"context"
	"slices"
	"strconv"
	"testing"

	"github.com/keapsync/keapsync/sidecar/keap"
)

// Companies inserted, updated and deleted in Postgres reach Keap through v2, and Keap's answers
// settle them (no echo, nothing left to push).
func TestPushesCompanies(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 3)
	ctx := context.Background()
	w.pushing()
	w.sb.ClearRequests()

	id := w.int(`insert into keap.companies (account_id, company_name, email, locality) values ($1, 'Acme', 'hi@acme.io', 'Mesa') returning id`, w.account)
	w.quiet()
	kid := w.int(`select coalesce(keap_id, 0) from keap.companies where id = $1`, id)
	if kid == 0 {
		t.Fatal("no Keap id written back")
	}
	got := w.company(kid)
	if got.name != "Acme" || got.email != "hi@acme.io" || got.locality != "Mesa" {
		t.Errorf("in Keap: %+v", got)
	}
	if calls := w.writes2(); !slices.Equal(calls, []string{"POST /v2/companies"}) {
		t.Errorf("calls: %v", calls)
	}

	w.sb.ClearRequests()
	w.exec(`update keap.companies set website = 'https://acme.io', region = 'AZ' where id = $1`, id)
	w.quiet()
	got = w.company(kid)
	if got.website != "https://acme.io" || got.region != "AZ" || got.locality != "Mesa" {
		t.Errorf("after the update, in Keap: %+v", got)
	}
	calls := w.writes2()
	if len(calls) != 1 || calls[0] != "PATCH /v2/companies/"+strconv.FormatInt(kid, 10)+"?update_mask=address&update_mask=website" &&
		calls[0] != "PATCH /v2/companies/"+strconv.FormatInt(kid, 10)+"?update_mask=website&update_mask=address" {
		t.Errorf("calls: %v", calls)
	}
	if n := w.int(`select count(*) from keapsync.sync_state s where s.object_type = 'company'
	    and keapsync.pending_push(s.account_id, 'company', s.local_id) ->> 'op' <> 'none'`); n != 0 {
		t.Errorf("%d companies still differ from what Keap holds", n)
	}

	w.sb.ClearRequests()
	w.exec(`delete from keap.companies where id = $1`, id)
	w.quiet()
	if _, err := w.api.GetObject(ctx, "/v2/companies", keap.ID(kid)); err == nil {
		t.Error("the company deleted here is still in Keap")
	}
}

type companyInKeap struct{ name, email, website, locality, region string }

// company reads a company from the sandbox's state.
func (w *world) company(id int64) companyInKeap {
	w.t.Helper()
	for _, c := range w.sb.Snapshot().Companies {
		if c["id"] != strconv.FormatInt(id, 10) {
			continue
		}
		out := companyInKeap{name: str(c["company_name"]), website: str(c["website"])}
		if e, ok := c["email_address"].(map[string]any); ok {
			out.email = str(e["email"])
		}
		if a, ok := c["address"].(map[string]any); ok {
			out.locality, out.region = str(a["locality"]), str(a["region"])
		}
		return out
	}
	w.t.Fatalf("company %d is not in Keap", id)
	return companyInKeap{}
}

func str(v any) string { s, _ := v.(string); return s }

// writes2 returns the logged v2 write calls.
func (w *world) writes2() []string {
	var out []string
	for _, r := range w.sb.Requests() {
		if r.Method != "GET" {
			s := r.Method + " " + r.Path[len("/crm/rest"):]
			if r.Query != "" {
				s += "?" + r.Query
			}
			out = append(out, s)
		}
	}
	return out
}
