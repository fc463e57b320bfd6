package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keapsync/keapsync/sidecar/keapauth"
	"github.com/keapsync/keapsync/sidecar/pgcluster"
	"github.com/keapsync/keapsync/sidecar/pgtest"
	"github.com/keapsync/keapsync/sidecar/sandbox"
)

// The whole Keap -> Postgres path as an operator runs it: auth login, serve, hooks ensure,
// backfill, then a change made in Keap arrives through a hook.
func TestServeBringsKeapChangesIn(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sb, err := sandbox.New(sandbox.Options{Seed: 3, Contacts: 40, AutoApprove: true, Unthrottled: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := sb.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	key, _ := keapauth.NewKey()
	creds := sb.Credentials()
	port, _ := pgcluster.FreePort()
	listen := "127.0.0.1:" + strconv.Itoa(port)
	dbURL := pgtest.URL(t)
	common := []string{"--database-url", dbURL, "--client-id", creds.ClientID, "--client-secret", creds.ClientSecret,
		"--auth-url", sb.URL() + "/app/oauth/authorize", "--token-url", sb.URL() + "/token", "--secret-key", key,
		"--api-url", sb.URL() + "/crm/rest"}
	if out, err := runApp(t, append([]string{"auth", "login", "--follow"}, common[:12]...)...); err != nil {
		t.Fatalf("login: %v\n%s", err, out)
	}

	served := make(chan error, 1)
	var serveOut bytes.Buffer
	go func() {
		app := newApp()
		app.Writer, app.ErrWriter = &serveOut, &serveOut
		served <- app.RunContext(ctx, append([]string{"keapsync", "--log-level", "warn", "serve", "--listen", listen,
			"--coalesce", "0s", "--reconcile-every", "0s"}, common...))
	}()
	base := "http://" + listen
	waitFor(t, "serve to answer /healthz", func() bool {
		select {
		case err := <-served:
			t.Fatalf("serve stopped: %v\n%s", err, serveOut.String())
		default:
		}
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == 200
	})

	if out, err := runApp(t, append([]string{"hooks", "ensure", "--public-url", base}, common...)...); err != nil || !strings.Contains(out, "14 verified") {
		t.Fatalf("hooks ensure: %v\n%s", err, out)
	}
	if out, err := runApp(t, append([]string{"backfill"}, common...)...); err != nil || !strings.Contains(out, ": done") {
		t.Fatalf("backfill: %v\n%s", err, out)
	}

	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var first int64
	if err := conn.QueryRow(ctx, `select keap_id from keap.contacts order by keap_id limit 1`).Scan(&first); err != nil {
		t.Fatal(err)
	}
	if err := sb.EditContact(first, map[string]any{"family_name": "Through-A-Hook"}); err != nil {
		t.Fatal(err)
	}
	sb.FlushHooks()
	waitFor(t, "the Keap edit to reach Postgres", func() bool {
		var n int
		_ = conn.QueryRow(ctx, `select count(*) from keap.contacts where keap_id = $1 and family_name = 'Through-A-Hook'`, first).Scan(&n)
		return n == 1
	})

	// And the other way: a plain SQL edit reaches Keap, and the hooked change above was not echoed.
	for _, r := range sb.Requests() {
		if r.Method == "PATCH" || r.Method == "PUT" {
			t.Errorf("echo: %s %s after a change that came from Keap", r.Method, r.Path)
		}
	}
	if _, err := conn.Exec(ctx, `update keap.contacts set job_title = 'Pushed from SQL' where keap_id = $1`, first); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the SQL edit to reach Keap", func() bool {
		for _, c := range sb.Snapshot().Contacts {
			if fmt.Sprint(c["id"]) == strconv.FormatInt(first, 10) {
				return c["job_title"] == "Pushed from SQL"
			}
		}
		return false
	})

	// What Keap said about the account's budget is recorded for the dashboard's sync health.
	waitFor(t, "serve to record the account's Keap budget", func() bool {
		var used int
		_ = conn.QueryRow(ctx, `select coalesce(per_day - day_available, 0) from keapsync.rate_budget_usage`).Scan(&used)
		return used > 0
	})

	for path, want := range map[string]string{"/readyz": `"accounts":{"`, "/metrics": "keapsync_keap_requests_total"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), want) {
			t.Errorf("%s: %d %.300s", path, resp.StatusCode, body)
		}
	}
	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("serve ended with %v\n%s", err, serveOut.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not shut down")
	}
}

// waitFor polls cond for up to 30 s: a bound on a test that would otherwise hang, not a
// performance threshold.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}
