package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keapsync/keapsync/sidecar/devtools/pgtest"
	"github.com/keapsync/keapsync/sidecar/ingest"
	"github.com/keapsync/keapsync/sidecar/keapauth"
	"github.com/keapsync/keapsync/sidecar/pgcluster"
	"github.com/keapsync/keapsync/sidecar/sandbox"
)

// The whole path as an operator runs it: migrate as the owner, then as the least-privilege
// keapsync_sidecar role auth login, serve, hooks ensure, backfill; a change made in Keap arrives
// through a hook and a SQL edit is pushed to Keap.
func TestServeBringsKeapChangesIn(t *testing.T) {
	t.Parallel()
	owner := pgtest.EmptyURL(t)
	release := pgtest.LockRoles(t) // migrating grants to the cluster's roles
	if out, err := runApp(t, "migrate", "--database-url", owner); err != nil {
		t.Fatalf("migrate: %v\n%s", err, out)
	}
	release()
	serveEndToEnd(t, owner, asRole(t, owner, "keapsync_sidecar"))
}

// The same run as a role that lacks one right the sidecar uses stops at once, naming the right.
func TestServeAsRoleMissingARight(t *testing.T) {
	t.Parallel()
	owner := pgtest.URL(t)
	conn, err := pgx.Connect(context.Background(), owner)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), `revoke update on keapsync.push_queue from keapsync_sidecar`); err != nil {
		t.Fatal(err)
	}
	port, _ := pgcluster.FreePort()
	out, err := runApp(t, "serve", "--database-url", asRole(t, owner, "keapsync_sidecar"), "--listen", "127.0.0.1:"+strconv.Itoa(port),
		"--api-key-file", secretFile(t, "unused"))
	if err == nil || !strings.Contains(err.Error(), "keapsync_sidecar lacks UPDATE on table keapsync.push_queue") ||
		!strings.Contains(err.Error(), "grant update on keapsync.push_queue to keapsync_sidecar") {
		t.Fatalf("serve as a role without UPDATE on keapsync.push_queue: %v\n%s", err, out)
	}
}

// asRole is dbURL logging in as role.
func asRole(t *testing.T, dbURL, role string) string {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User(role)
	return u.String()
}

func serveEndToEnd(t *testing.T, owner, dbURL string) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Keap's documented behaviour where it speaks (orders newest first), the hardest answers
	// where it is silent: second stamps, exclusive since, tags and payments that leave stamps alone.
	sb, err := sandbox.New(sandbox.Options{Seed: 3, Contacts: 40, AutoApprove: true, Unthrottled: true,
		Profile: sandbox.Profile{SecondStamps: true, SinceExclusive: true, TagsKeepStamp: true, PaymentKeepsOrderStamp: true}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2500 {
		id, err := sb.CreateOrder(map[string]any{"contact_id": 1 + i%40, "order_title": "x", "order_type": "Online",
			"order_items": []any{map[string]any{"product_id": 1, "quantity": 1}, map[string]any{"product_id": 2, "quantity": 2}}})
		if err != nil {
			t.Fatal(err)
		}
		if i%500 == 0 {
			if err := sb.PayOrder(id, 1); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := sb.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	key := keapauth.NewKey()
	creds := sb.Credentials()
	port, _ := pgcluster.FreePort()
	listen := "127.0.0.1:" + strconv.Itoa(port)
	oauth := append([]string{"--database-url", dbURL, "--client-id", creds.ClientID,
		"--auth-url", sb.URL() + "/app/oauth/authorize", "--token-url", sb.URL() + "/token"}, secretFiles(t, creds.ClientSecret, key)...)
	common := append(oauth[:len(oauth):len(oauth)], "--api-url", sb.URL()+"/crm/rest")
	if out, err := runApp(t, append([]string{"auth", "login", "--follow"}, oauth...)...); err != nil {
		t.Fatalf("login: %v\n%s", err, out)
	}

	// A slot of its own: slot names are cluster-wide, and other packages' tests on the shared
	// cluster create the default one.
	base, stop := startServe(t, ctx, append([]string{"--listen", listen, "--coalesce", "0s", "--reconcile-every", "0s",
		"--push-slot", "keapsync_serve_e2e_test"}, common...))

	if out, err := runApp(t, append([]string{"hooks", "ensure", "--public-url", base}, common...)...); err != nil || !strings.Contains(out, fmt.Sprintf("%d verified", len(ingest.EventKeys))) {
		t.Fatalf("hooks ensure: %v\n%s", err, out)
	}
	if out, err := runApp(t, append([]string{"backfill"}, common...)...); err != nil || !strings.Contains(out, ": done") {
		t.Fatalf("backfill: %v\n%s", err, out)
	}

	conn, err := pgx.Connect(ctx, owner) // the analyst's SQL edits
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var first int64
	if err := conn.QueryRow(ctx, `select keap_id from keap.contacts order by keap_id limit 1`).Scan(&first); err != nil {
		t.Fatal(err)
	}

	// Every order, listed newest first, with its items and payments.
	state := sb.Snapshot()
	items, payments, unpaid := 0, 0, int64(0)
	for _, o := range state.Orders {
		items += len(o["order_items"].([]map[string]any))
		if o["total_paid"].(float64) > 0 {
			payments++
		} else {
			unpaid = o["id"].(int64)
		}
	}
	for what, want := range map[string]int{"orders": len(state.Orders), "order_items": items, "order_payments": payments} {
		var n int
		if err := conn.QueryRow(ctx, `select count(*) from keap.`+what).Scan(&n); err != nil || n != want || (what == "orders" && n < 2500) {
			t.Fatalf("%s: %d in Postgres, %d in Keap (%v)", what, n, want, err)
		}
	}
	// A payment taken in Keap arrives (only invoice.payment.add tells under this profile).
	if err := sb.PayOrder(unpaid, 3); err != nil {
		t.Fatal(err)
	}
	// A tag applied in Keap without a last_updated bump arrives.
	tag := int64(0)
	for _, tg := range state.Tags {
		tag = tg["id"].(int64)
	}
	if err := sb.RemoveTag(first, tag); err != nil {
		t.Fatal(err)
	}
	sb.FlushHooks()
	waitFor(t, "the tag removed in Keap to leave Postgres", func() bool {
		var n int
		_ = conn.QueryRow(ctx, `select count(*) from keap.contact_tags ct join keap.contacts c on c.id = ct.contact_id
		    join keap.tags tg on tg.id = ct.tag_id where c.keap_id = $1 and tg.keap_id = $2`, first, tag).Scan(&n)
		return n == 0
	})
	if err := sb.ApplyTag(first, tag); err != nil {
		t.Fatal(err)
	}
	sb.FlushHooks()
	waitFor(t, "the payment and the tag applied in Keap to reach Postgres", func() bool {
		var paid, tagged int
		_ = conn.QueryRow(ctx, `select count(*) from keap.orders o join keap.order_payments p on p.order_id = o.id
		    where o.keap_id = $1 and o.total_paid = 3 and p.amount = 3`, unpaid).Scan(&paid)
		_ = conn.QueryRow(ctx, `select count(*) from keap.contact_tags ct join keap.contacts c on c.id = ct.contact_id
		    join keap.tags tg on tg.id = ct.tag_id where c.keap_id = $1 and tg.keap_id = $2`, first, tag).Scan(&tagged)
		return paid == 1 && tagged == 1
	})
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

	// Everything above ran as the role in dbURL, the replication stream included.
	var role string
	var walsenders int
	if err := conn.QueryRow(ctx, `select $1::text, (select count(*) from pg_stat_activity where backend_type = 'walsender'
	    and datname = current_database() and usename = $1)`, must(url.Parse(dbURL)).User.Username()).Scan(&role, &walsenders); err != nil {
		t.Fatal(err)
	}
	if walsenders != 1 {
		t.Errorf("%d replication connections as %s, want 1", walsenders, role)
	}

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
		if strings.Contains(string(body), creds.ClientID) {
			t.Errorf("%s shows the OAuth client id", path)
		}
	}
	cancel()
	stop()
}

// startServe runs `keapsync serve args...` until ctx ends and waits for /healthz; it returns
// serve's base URL (args must hold --listen) and a stop that, once ctx is cancelled, waits for
// a clean exit.
func startServe(t *testing.T, ctx context.Context, args []string) (base string, stop func()) {
	t.Helper()
	served := make(chan error, 1)
	ended := make(chan struct{})
	var serveOut bytes.Buffer
	go func() {
		defer close(ended)
		app := newApp()
		app.Writer, app.ErrWriter = &serveOut, &serveOut
		served <- app.RunContext(ctx, append([]string{"keapsync", "--log-level", "info", "serve"}, args...))
	}()
	// A test that fails waiting on serve (a push that never reaches Keap) shows serve's log, once
	// its context has ended it: at info, as it is read only then.
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		select {
		case <-ended:
			t.Logf("serve's log:\n%s", serveOut.String())
		case <-time.After(30 * time.Second):
			t.Log("serve did not stop; its output is not shown")
		}
	})
	for i, a := range args {
		if a == "--listen" {
			base = "http://" + args[i+1]
		}
	}
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
	return base, func() {
		t.Helper()
		select {
		case err := <-served:
			if err != nil {
				t.Errorf("serve ended with %v\n%s", err, serveOut.String())
			}
		case <-time.After(30 * time.Second):
			t.Fatal("serve did not shut down")
		}
	}
}

// waitFor polls cond for up to two minutes: a bound on a test that would otherwise hang, not a
// performance threshold (the package's tests run side by side, on a machine that may be busy
// with other packages too: 30 s was once not enough for a push to reach Keap).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// serve given Supabase's transaction pooler stops before connecting and names the direct URL.
func TestServeRefusesSupabasePooler(t *testing.T) {
	t.Parallel()
	_, err := runApp(t, "serve", "--api-key-file", secretFile(t, "unused"), "--database-url",
		"postgresql://keapsync_sidecar.abcdefgh:pw@aws-0-eu-central-1.pooler.supabase.com:6543/postgres")
	if err == nil || !strings.Contains(err.Error(), "transaction mode") ||
		!strings.Contains(err.Error(), "postgresql://keapsync_sidecar:<password>@db.abcdefgh.supabase.co:5432/postgres") {
		t.Fatalf("serve on the pooler: %v", err)
	}
}
