package dashboard

import (
	"strings"
	"testing"
)

// The overview's Sync card says when the last exchange was and how far behind each direction is,
// and its charts mark the running week, month and hour.
func TestOverviewSyncCardAndCharts(t *testing.T) {
	e := newEnv(t)
	c := e.as(adminA)
	resp, body := c.get("/")
	if resp.StatusCode != 200 {
		t.Fatalf("overview: %d", resp.StatusCode)
	}
	for _, want := range []string{
		"Sync activity, last 48 hours", "In from Keap", "Out to Keap",
		`class="axis-title ytitle" text-anchor="middle">New contacts</text>`,
		`class="axis-title xtitle" text-anchor="middle">Month (UTC)</text>`,
		"so far: it is still running.",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("overview lacks %q", want)
		}
	}
	// The seed applied Keap's records moments ago: that is the last sync, nothing waits.
	if !strings.Contains(body, `data-kpi="last-sync"><time`) || strings.Contains(body, `data-kpi="last-sync">never`) {
		t.Error("the Sync card shows no last sync after the seed's records came in")
	}
	// A push waiting shows as lag out.
	if _, err := e.db.Exec(t.Context(), `insert into keapsync.push_queue (account_id, object_type, local_id, first_enqueued_at)
		values ($1, 'contact', 1, now() - interval '7 minutes')`, accountA); err != nil {
		t.Fatal(err)
	}
	if _, body = c.get("/?fragment=kpis"); !strings.Contains(body, "1 waiting, lag 7 min") {
		t.Errorf("the Sync card lacks the push lag:\n%s", body)
	}
	// Another account's queue is not this one's lag.
	if _, body = e.as(adminB).get("/?fragment=kpis"); strings.Contains(body, "waiting, lag") {
		t.Error("account B shows account A's push lag")
	}
}
