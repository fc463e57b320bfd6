package serve

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/keapsync/keapsync/sidecar/devtools/pgtest"
	"github.com/keapsync/keapsync/sidecar/devtools/testlog"
)

// A scrape reads the ops figures and says the read worked; with the database away it says so in
// the up gauge (0) instead of failing the scrape.
func TestOpsCollectorSaysWhetherItRead(t *testing.T) {
	t.Parallel()
	db := pgtest.Pool(t)
	if _, err := db.Exec(t.Context(), `insert into keapsync.accounts (name, keap_tenant, needs_reauth) values ('O', 'ops', true)`); err != nil {
		t.Fatal(err)
	}
	c := &opsCollector{db: db, log: testlog.New(t)}
	scrape := func() (up, reauth float64) {
		ch := make(chan prometheus.Metric, 256)
		c.Collect(ch)
		close(ch)
		up, reauth = -1, -1
		for m := range ch {
			var out dto.Metric
			if err := m.Write(&out); err != nil {
				t.Fatal(err)
			}
			switch m.Desc() {
			case descUp:
				up = out.GetGauge().GetValue()
			case descNeedsReauth:
				reauth = out.GetGauge().GetValue()
			}
		}
		return up, reauth
	}
	if up, reauth := scrape(); up != 1 || reauth != 1 {
		t.Errorf("a scrape: up %v, the account needing re-authorization %v; want 1 and 1", up, reauth)
	}
	db.Close()
	if up, _ := scrape(); up != 0 {
		t.Errorf("the database away: up %v, want 0", up)
	}
}
