package dashboard

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keapsync/keapsync/sidecar/keap"
	"github.com/keapsync/keapsync/sidecar/push"
	"github.com/keapsync/keapsync/sidecar/sandbox"
)

// e2eSlots numbers the replication slots of this package run (slot names are cluster-wide).
var e2eSlots atomic.Int64

// e2eDir holds the browser test and its pinned npm package (playwright-core).
const e2eDir = "../.ci/dashboard-e2e"

const e2eHint = `the browser test needs Debian's chromium and the e2e npm package:
  apt-get install -y --no-install-recommends chromium
  (cd .ci/dashboard-e2e && npm ci --no-audit --no-fund)
or run .ci/run; go test -short skips this test`

// TestBrowserE2E drives the dashboard in headless Chromium: sign in, KPIs, a database change
// appearing live, resolving a conflict and seeing the value pushed to Keap (the sandbox),
// retrying a dead letter, CSV export, 375 px layout. With $KEAPSYNC_ARTIFACTS set, a screenshot
// of each step goes there; otherwise only the pages open when a check fails are taken, into a
// temp dir (printed) that is kept only then.
func TestBrowserE2E(t *testing.T) {
	t.Parallel()
	node, chromium, artifacts := e2eTools(t)
	e := newEnv(t)
	e.keap = startPush(t, e.db)
	runBrowser(t, e, node, chromium, artifacts, "sse")
}

// startPush stands up Keap for account A, the sandbox, holding the Keap side of the seeded
// conflict, and runs the push component against the test database as `keapsync serve` does,
// so what the dashboard resolves travels to Keap the real way (replication slot, queue, worker).
func startPush(t *testing.T, db *pgxpool.Pool) *sandbox.Server {
	t.Helper()
	ctx := context.Background()
	// The sandbox numbers its contacts from 1: with 2200 of them, each of the seed's contacts (Keap
	// ids 1001-2200) has a Keap side, and a contact the push creates gets an id the seed does not
	// use (an id already taken here would make it the twin of another contact).
	sb, err := sandbox.New(sandbox.Options{Seed: 7, Contacts: 2200, Unthrottled: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := sb.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sb.Close() })
	if err := sb.EditContact(1001, map[string]any{"given_name": "Ada (Keap)"}); err != nil {
		t.Fatal(err)
	}
	// Account A talks to this Keap with a personal key: without it (or a token), its work would
	// wait as not connected (keapsync.account_state).
	if _, err := db.Exec(ctx, `update keapsync.accounts set credential = 'api_key' where id = $1`, accountA); err != nil {
		t.Fatal(err)
	}
	cfg := keap.DefaultConfig()
	cfg.APIURL = sb.URL() + "/crm/rest"
	cfg.Credentials = keap.APIKey(sb.Credentials().PersonalKey)
	cfg.Limits = keap.Limits{PerMinute: 1e8, PerDay: 1e9} // the sandbox is unthrottled
	api, err := keap.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// A pool of its own, as in serve (sized for the workers): the test pool is the dashboard's.
	pool, err := pgxpool.New(ctx, db.Config().ConnString())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	pc := push.DefaultConfig()
	pc.DB, pc.Log = pool, testLogger(t)
	pc.Slot = fmt.Sprintf("dash_e2e_%d_%d", os.Getpid(), e2eSlots.Add(1))
	pc.API = func(_ context.Context, account string) (push.Keap, error) {
		if account != accountA {
			return nil, fmt.Errorf("no Keap for account %s in this test", account)
		}
		return api, nil
	}
	pc.FlushInterval, pc.PollInterval, pc.Settle = 10*time.Millisecond, 20*time.Millisecond, 20*time.Millisecond
	p, err := push.New(pc)
	if err != nil {
		t.Fatal(err)
	}
	// Cleanups run last-registered first: the pusher stops, then its slot goes, then the
	// database (registered earlier) can be dropped.
	t.Cleanup(func() { _, _ = pool.Exec(context.Background(), `select pg_drop_replication_slot($1)`, pc.Slot) })
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("pusher: %v", err)
		}
	})
	return sb
}

// TestBrowserE2ERealtime is the same browser against Supabase-mode auth (password sign-in via a
// stand-in GoTrue, ES256 tokens checked with its JWKS) and live updates over the Phoenix
// websocket of a stand-in Realtime server that authorises the private channel with RLS.
func TestBrowserE2ERealtime(t *testing.T) {
	t.Parallel()
	node, chromium, artifacts := e2eTools(t)
	auth := newFakeAuth(t)
	e := supabaseEnv(t, seededPool(t), auth.URL)
	rt := &fakeRealtime{db: e.db, verify: e.srv.verify, apikey: "anon-key", logf: t.Logf}
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
		t.Cleanup(func() { removeUnlessFailed(t, artifacts) })
	} else if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	return node, chromium, artifacts
}

// shotsEnv asks the browser test for a screenshot at every step when a person named a directory
// for them ($KEAPSYNC_ARTIFACTS), and otherwise for screenshots of a failure only.
func shotsEnv() string {
	if os.Getenv("KEAPSYNC_ARTIFACTS") != "" {
		return "SHOTS=all"
	}
	return "SHOTS=failure"
}

// removeUnlessFailed removes a temp dir of screenshots unless the test failed, when they show how.
func removeUnlessFailed(t *testing.T, dir string) {
	if t.Failed() {
		t.Logf("screenshots of the failure in %s", dir)
		return
	}
	_ = os.RemoveAll(dir)
}

func runBrowser(t *testing.T, e *env, node, chromium, artifacts, mode string) {
	ctl := httptest.NewServer(e.control(t))
	defer ctl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join(e2eDir, "e2e.mjs"))
	cmd.Env = append(os.Environ(), "BASE_URL="+e.ts.URL, "CONTROL_URL="+ctl.URL, "ARTIFACTS="+artifacts,
		"CHROMIUM="+chromium, "MODE="+mode, shotsEnv())
	out, err := cmd.CombinedOutput()
	t.Logf("browser test output:\n%s", out)
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
	// What Keap (the sandbox) holds as the given name of the conflicted contact, read through
	// the sandbox's test surface.
	mux.HandleFunc("POST /keap-given-name", func(w http.ResponseWriter, r *http.Request) {
		if e.keap == nil {
			http.Error(w, "no sandbox in this test", http.StatusNotFound)
			return
		}
		for _, c := range e.keap.Snapshot().Contacts {
			if id, _ := c["id"].(int64); id == 1001 {
				name, _ := c["given_name"].(string)
				reply(t, w, name, nil)
				return
			}
		}
		http.Error(w, "contact 1001 not in the sandbox", http.StatusNotFound)
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
