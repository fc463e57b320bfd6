package dashboard

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// e2eDir holds the browser test and its pinned npm package (playwright-core).
const e2eDir = "../.ci/dashboard-e2e"

const e2eHint = `the browser test needs Debian's chromium and the e2e npm package:
  apt-get install -y --no-install-recommends chromium
  (cd .ci/dashboard-e2e && npm ci --no-audit --no-fund)
or run .ci/run; go test -short skips this test`

// TestBrowserE2E drives the dashboard in headless Chromium: sign in, KPIs, a database change
// appearing live, resolving a conflict, retrying a dead letter, CSV export, 375 px layout.
// Screenshots go to $KEAPSYNC_ARTIFACTS (or a temp dir, printed).
func TestBrowserE2E(t *testing.T) {
	node, chromium, artifacts := e2eTools(t)
	e := newEnv(t)
	runBrowser(t, e, node, chromium, artifacts, "sse")
}

// TestBrowserE2ERealtime is the same browser against Supabase-mode auth (password sign-in via a
// stand-in GoTrue, ES256 tokens checked with its JWKS) and live updates over the Phoenix
// websocket of a stand-in Realtime server that authorises the private channel with RLS.
func TestBrowserE2ERealtime(t *testing.T) {
	node, chromium, artifacts := e2eTools(t)
	auth := newFakeAuth(t)
	e := &env{t: t, db: seededPool(t)}
	ts := httptest.NewUnstartedServer(nil)
	srv, err := New(Config{SupabaseURL: auth.URL, AnonKey: "anon-key", PublicURL: "http://" + ts.Listener.Addr().String(),
		Log: testLogger(t)}, e.db)
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = srv.Handler()
	ts.Start()
	t.Cleanup(ts.Close)
	e.srv, e.ts = srv, ts
	rt := &fakeRealtime{db: e.db, verify: srv.verify, apikey: "anon-key", logf: t.Logf}
	auth.mux.Handle("GET /realtime/v1/websocket", rt)
	runBrowser(t, e, node, chromium, artifacts, "realtime")
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if len(rt.joins) == 0 || rt.joins[0] != "keapsync:"+accountA || rt.refused != 0 {
		t.Fatalf("realtime joins %v, refused %d", rt.joins, rt.refused)
	}
}

// e2eTools finds node, chromium and the npm package, or fails saying how to install them.
func e2eTools(t *testing.T) (node, chromium, artifacts string) {
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	chromium = os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node not found: %v\n%s", err, e2eHint)
	}
	if _, err := os.Stat(chromium); err != nil {
		t.Fatalf("chromium not found at %s\n%s", chromium, e2eHint)
	}
	if _, err := os.Stat(filepath.Join(e2eDir, "node_modules", "playwright-core", "package.json")); err != nil {
		t.Fatalf("playwright-core not installed in %s\n%s", e2eDir, e2eHint)
	}
	artifacts = os.Getenv("KEAPSYNC_ARTIFACTS")
	if artifacts == "" {
		artifacts, err = os.MkdirTemp("", "keapsync-dashboard-e2e-")
		if err != nil {
			t.Fatal(err)
		}
	} else if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	return node, chromium, artifacts
}

func runBrowser(t *testing.T, e *env, node, chromium, artifacts, mode string) {
	ctl := httptest.NewServer(e.control(t))
	defer ctl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join(e2eDir, "e2e.mjs"))
	cmd.Env = append(os.Environ(), "BASE_URL="+e.ts.URL, "CONTROL_URL="+ctl.URL, "ARTIFACTS="+artifacts,
		"CHROMIUM="+chromium, "MODE="+mode)
	out, err := cmd.CombinedOutput()
	t.Logf("browser test output:\n%s", out)
	t.Logf("screenshots in %s", artifacts)
	if err != nil {
		t.Fatalf("browser test failed: %v", err)
	}
}

// control changes the database behind the browser's back, as a person in the SQL editor (or
// the sync) would, so the test can watch the page follow.
func (e *env) control(t *testing.T) http.Handler {
	mux := http.NewServeMux()
	ctx := context.Background()
	mux.HandleFunc("POST /insert-contact", func(w http.ResponseWriter, r *http.Request) {
		_, err := e.db.Exec(ctx, `insert into keap.contacts (account_id, given_name, family_name, email)
			values ($1, 'Live', 'Person', 'live.person@example.com')`, accountA)
		reply(t, w, "ok", err)
	})
	mux.HandleFunc("POST /new-conflict", func(w http.ResponseWriter, r *http.Request) {
		reply(t, w, "ok", SeedDemoConflict(ctx, e.db, accountA, 1003, "Alan (local)", "Alan (Keap)"))
	})
	mux.HandleFunc("POST /conflict-status", func(w http.ResponseWriter, r *http.Request) {
		var s string
		err := e.db.QueryRow(ctx, `select c.status || ' ' || coalesce(c.resolution, '') || ' ' || x.given_name
			from keapsync.conflicts c join keap.contacts x on x.id = c.local_id
			where c.account_id = $1 and c.keap_id = 1001`, accountA).Scan(&s)
		reply(t, w, s, err)
	})
	return mux
}

func reply(t *testing.T, w http.ResponseWriter, body string, err error) {
	if err != nil {
		t.Logf("control: %v", err)
		http.Error(w, err.Error(), 500)
		return
	}
	_, _ = w.Write([]byte(body))
}
