package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keapsync/keapsync/sidecar/devtools/pgtest"
	"github.com/keapsync/keapsync/sidecar/pgcluster"
	"github.com/keapsync/keapsync/sidecar/sandbox"
)

// Every metric the alert rules (docs/ops/alerts.yml) and the Grafana dashboard
// (docs/ops/grafana-dashboard.json) name is in a /metrics scrape of a running serve: a rule on a
// metric that does not exist never fires.
func TestEveryAlertMetricIsServed(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sb, err := sandbox.New(sandbox.Options{Seed: 5, Contacts: 3, Unthrottled: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := sb.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	keyed := []string{"--database-url", pgtest.URL(t), "--api-key-file", secretFile(t, sb.Credentials().PersonalKey), "--api-url", sb.URL() + "/crm/rest"}
	// An account (the key's, made by the first command) for the per-account series; serve's
	// first reconcile of it makes the Keap calls that the request counters count.
	if out, err := runApp(t, append([]string{"backfill"}, keyed...)...); err != nil {
		t.Fatalf("backfill: %v\n%s", err, out)
	}
	port, _ := pgcluster.FreePort()
	base, stop := startServe(t, ctx, append([]string{"--listen", "127.0.0.1:" + strconv.Itoa(port),
		"--push-slot", "keapsync_ops_metrics_test"}, keyed...))
	defer func() { cancel(); stop() }()

	named := map[string]bool{}
	for _, f := range []string{"alerts.yml", "grafana-dashboard.json"} {
		b, err := os.ReadFile("../../../docs/ops/" + f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(f, ".json") {
			var v any
			if err := json.Unmarshal(b, &v); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
		}
		for _, m := range regexp.MustCompile(`\bkeapsync_[a-z0-9_]+`).FindAllString(string(b), -1) {
			named[m] = true
		}
	}
	if len(named) < 10 {
		t.Fatalf("only %d metrics named in docs/ops: %v", len(named), named)
	}
	var missing []string
	// Keap request counters appear with the first call: serve's first reconcile makes some.
	// (two minutes bound a test that would otherwise hang; it is no performance threshold.)
	scrape := func() bool {
		resp, err := http.Get(base + "/metrics")
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		served := map[string]bool{}
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) >= 3 && f[0] == "#" && f[1] == "TYPE" {
				served[f[2]] = true
			} else if len(f) >= 2 && !strings.HasPrefix(l, "#") {
				served[strings.SplitN(f[0], "{", 2)[0]] = true
			}
		}
		missing = missing[:0]
		for m := range named {
			if !served[m] {
				missing = append(missing, m)
			}
		}
		return len(missing) == 0
	}
	for deadline := time.Now().Add(2 * time.Minute); !scrape() && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
	}
	slices.Sort(missing)
	if len(missing) > 0 {
		t.Fatalf("named in docs/ops but not served: %v", missing)
	}
}
