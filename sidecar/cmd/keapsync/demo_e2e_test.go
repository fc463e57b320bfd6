package main

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keapsync/keapsync/sidecar/devtools/testlog"
	"github.com/keapsync/keapsync/sidecar/pgcluster"
)

// TestDemoWalkInBrowser runs `keapsync demo` and walks it as a newcomer in headless Chromium
// (.ci/dashboard-e2e/demo-walk.mjs), on a first run and on a rerun over the same directory:
// the first page is the synced account with the printed counts, a change in Keap arrives, the
// printed psql step reaches Keap, the announced conflict waits and its resolution is pushed.
// With $KEAPSYNC_ARTIFACTS set, a screenshot of each step goes to $KEAPSYNC_ARTIFACTS/demo-run-N;
// otherwise only the pages open when a check fails are taken, into a temp dir (printed) that is
// kept only then.
func TestDemoWalkInBrowser(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	const e2eDir = "../../../.ci/dashboard-e2e"
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node not found: %v (see .ci/run)", err)
	}
	chromium := os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(filepath.Join(e2eDir, "node_modules", "playwright-core", "package.json")); err != nil {
		t.Fatalf("playwright-core not installed: (cd .ci/dashboard-e2e && npm ci)")
	}
	artifacts, shots := os.Getenv("KEAPSYNC_ARTIFACTS"), "SHOTS=all"
	if artifacts == "" {
		shots = "SHOTS=failure"
		artifacts, err = os.MkdirTemp("", "keapsync-demo-walk-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("screenshots of the failure in %s", artifacts)
			} else {
				_ = os.RemoveAll(artifacts)
			}
		})
	}
	dir := t.TempDir()
	var ports, args []string
	pick := func() {
		ports = make([]string, 4)
		for i := range ports {
			p, err := pgcluster.FreePort()
			if err != nil {
				t.Fatal(err)
			}
			ports[i] = strconv.Itoa(p)
		}
		args = []string{"keapsync", "--log-level", "warn", "demo", "--dir", dir, "--pg-port", ports[0],
			"--sandbox-addr", "127.0.0.1:" + ports[1], "--listen", "127.0.0.1:" + ports[2],
			"--dashboard-listen", "127.0.0.1:" + ports[3], "--sandbox-contacts", "60"}
	}
	pick()
	t.Cleanup(func() { _, _ = runApp(t, "demo", "--dir", dir, "--pg-port", ports[0], "--stop") })

	moved := 0 // times the first run was tried again on other ports
runs:
	for n := 1; n <= 2; n++ {
		out := &testlog.Buffer{}
		app := newApp()
		app.Writer, app.ErrWriter = out, out
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- run(ctx, app, args) }() // run: main's, the CLI as a person runs it
		for deadline := time.Now().Add(2 * time.Minute); !strings.Contains(out.String(), "Serving until Ctrl-C"); time.Sleep(50 * time.Millisecond) {
			select {
			case err := <-done:
				cancel()
				// A port FreePort found free can be taken before the demo binds it (by any
				// process's outgoing connection): the first run tries other ports.
				if n == 1 && moved < 2 && (errors.Is(err, pgcluster.ErrPortInUse) || errors.Is(err, syscall.EADDRINUSE)) {
					t.Logf("demo run 1 could not listen (%v); trying other ports", err)
					moved++
					pick()
					n--
					continue runs
				}
				t.Fatalf("demo run %d ended: %v\n%s", n, err, out)
			default:
			}
			if time.Now().After(deadline) {
				cancel()
				t.Fatalf("demo run %d did not come up:\n%s", n, out)
			}
		}
		printed := out.String()
		find := func(re string) string {
			m := regexp.MustCompile(re).FindStringSubmatch(printed)
			if m == nil {
				cancel()
				t.Fatalf("demo run %d printed nothing like %s:\n%s", n, re, printed)
			}
			return m[1]
		}
		dbURL := find(`Connect:\s+psql '([^']+)'`)
		psqlStep := find(`psql '[^']+' -c "(update keap\.contacts [^"]+)"`)
		ctl := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/psql-step" {
				http.NotFound(w, r)
				return
			}
			conn, err := pgx.Connect(r.Context(), dbURL)
			if err == nil {
				defer conn.Close(r.Context())
				_, err = conn.Exec(r.Context(), psqlStep)
			}
			if err != nil {
				http.Error(w, err.Error(), 500)
			}
		}))
		shotDir := filepath.Join(artifacts, "demo-run-"+strconv.Itoa(n))
		if err := os.MkdirAll(shotDir, 0o755); err != nil {
			t.Fatal(err)
		}
		bctx, bcancel := context.WithTimeout(context.Background(), 3*time.Minute)
		cmd := exec.CommandContext(bctx, node, filepath.Join(e2eDir, "demo-walk.mjs"))
		cmd.Env = append(os.Environ(), "BASE_URL="+find(`Dashboard: (http://\S+)`), "SANDBOX_URL="+find(`Keap sandbox at (http://\S+)`),
			"CONTROL_URL="+ctl.URL, "TENANT="+find(`Connected through OAuth: account \S+ \(([^)]+)\)`),
			"CONTACTS="+find(`In Postgres now: (\d+) contacts`), "HOOKS="+find(`\((\d+) hooks verified`), "ARTIFACTS="+shotDir, "CHROMIUM="+chromium, shots)
		browserOut, err := cmd.CombinedOutput()
		bcancel()
		ctl.Close()
		t.Logf("demo run %d, browser:\n%s", n, browserOut)
		cancel()
		if derr := <-done; derr != nil {
			t.Errorf("demo run %d ended with %v", n, derr)
		}
		if err != nil {
			t.Fatalf("demo run %d: the walk failed: %v\ndemo output:\n%s", n, err, out)
		}
	}
	if shots == "SHOTS=all" {
		t.Logf("screenshots in %s", artifacts)
	}
}
