package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keapsync/keapsync/dashboard"
	"github.com/keapsync/keapsync/sidecar/ingest"
	"github.com/keapsync/keapsync/sidecar/keapauth"
	"github.com/keapsync/keapsync/sidecar/keapclients"
	"github.com/keapsync/keapsync/sidecar/push"
	"github.com/keapsync/keapsync/sidecar/sandbox"
	"github.com/keapsync/keapsync/sidecar/serve"
)

// runDemoSandbox starts the demo's Keap sandbox (auto-approving OAuth), connects keapsync to it
// through the real authorization code flow with a generated local secret key, and serves the
// sandbox until interrupted (unless --serve=false).
func runDemoSandbox(ctx context.Context, w io.Writer, cfg demoConfig, dbURL string) error {
	log, dir := cfg.Log, cfg.Dir
	srv, err := sandbox.New(sandbox.Options{
		Addr: cfg.SandboxAddr, Logger: log, Seed: 1,
		Contacts: cfg.SandboxContacts, AutoApprove: true, HookDelay: 2 * time.Second,
	})
	if err != nil {
		return fmt.Errorf("demo sandbox: %w", err)
	}
	if err := srv.Start(ctx); err != nil {
		return fmt.Errorf("demo sandbox: %w", err)
	}
	defer srv.Close()

	secret, err := demoSecretKey(dir)
	if err != nil {
		return err
	}
	keys, err := keapauth.ParseKeyring(secret)
	if err != nil {
		return err
	}
	pool, err := pgxpool.New(ctx, dbURL+"&pool_max_conns=20") // see defaultPoolSize
	if err != nil {
		return fmt.Errorf("connect to demo database: %w", err)
	}
	defer pool.Close()
	creds := srv.Credentials()
	keeper, err := keapauth.New(keapauth.Config{
		ClientID: creds.ClientID, ClientSecret: creds.ClientSecret,
		AuthURL: srv.URL() + "/app/oauth/authorize", TokenURL: srv.URL() + "/token", Log: log,
	}, pool, keys)
	if err != nil {
		return err
	}
	account, tenant, err := keeper.Login(ctx, keapauth.LoginOptions{Follow: true})
	if err != nil {
		return fmt.Errorf("connect the demo account to the sandbox: %w", err)
	}

	// The demo user administers the account the demo connects: it is the one the dashboard
	// opens on.
	if _, err := pool.Exec(ctx, sqlDemoAdmin, account, dashboard.DemoUserID); err != nil {
		return fmt.Errorf("make the demo user the account's admin: %w", err)
	}

	fmt.Fprintf(w, "Keap sandbox at %s with %d generated contacts (state: %s/_sandbox/state)\n",
		srv.URL(), cfg.SandboxContacts, srv.URL())
	fmt.Fprintf(w, "Connected through OAuth: account %s (%s), administered by the demo user\n\n", account, tenant)

	// Backfill the sandbox into Postgres, then serve: hooks, workers, reconcile, token refresh.
	reg := newRegistry()
	clients, err := keapclients.New(keapclients.Config{APIURL: srv.URL() + "/crm/rest", ClientID: creds.ClientID,
		Keeper: keeper, Logger: log, Registerer: reg}, pool)
	if err != nil {
		return err
	}
	session := newKeapSession(pool, clients)
	apiOf := session.apiOf
	sweeper := &ingest.Sweeper{DB: pool, API: apiOf, Progress: w, Log: log.With("component", "backfill")}
	if err := sweeper.Backfill(ctx, account, ingest.ObjectTypes); err != nil {
		return fmt.Errorf("backfill the demo sandbox: %w", err)
	}
	if err := printDemoCounts(ctx, w, pool, srv.Snapshot(), account); err != nil {
		return err
	}
	// One conflict waiting for a person, made the way a real one happens: the same field
	// changed in Keap and here before either side heard of the other's change.
	quiet := &ingest.Sweeper{DB: pool, API: apiOf, Log: sweeper.Log}
	if err := demoConflict(ctx, pool, srv, quiet, account); err != nil {
		return fmt.Errorf("the demo conflict: %w", err)
	}
	listen := cfg.Listen
	public := "http://" + listen
	pusher, err := newPusher(push.DefaultConfig(), log, reg, session)
	if err != nil {
		return err
	}
	// The dashboard in local mode.
	dcfg := dashboard.DefaultConfig()
	dcfg.Local, dcfg.Listen, dcfg.Log = true, cfg.DashboardListen, log
	dash, err := dashboard.New(dcfg, pool)
	if err != nil {
		return err
	}
	server, err := buildServer(log, reg, session, pusher,
		// The demo registers the hooks itself once serve listens; serve's own first round of
		// re-verification would race it (two ensures at once leave Keap and the table
		// disagreeing with the count printed).
		serve.Config{Listen: listen, PublicURL: public, HooksEvery: -1}, defaultSweepSettings(), time.Second, nil)
	if err != nil {
		return err
	}
	server.Dashboard = dash
	if err := server.Start(ctx); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	stopped := func() error {
		server.Stop()
		return server.Err()
	}
	cl, err := clients.For(ctx, account)
	if err != nil {
		return err
	}
	rep, err := ingest.EnsureHooks(ctx, pool, cl, account, public)
	if err != nil {
		return fmt.Errorf("register the demo's hooks: %w", err)
	}

	env := []string{
		"DATABASE_URL='" + dbURL + "'",
		"KEAP_API_URL=" + srv.URL() + "/crm/rest",
		"KEAP_AUTH_URL=" + srv.URL() + "/app/oauth/authorize",
		"KEAP_TOKEN_URL=" + srv.URL() + "/token",
		"KEAP_CLIENT_ID=" + creds.ClientID,
		"KEAP_CLIENT_SECRET=" + creds.ClientSecret,
		"KEAPSYNC_SECRET_KEY=$(cat " + filepath.Join(dir, "secret.key") + ")",
	}
	fmt.Fprintf(w, "\nkeapsync serves on %s (%d hooks verified; /healthz, /readyz, /metrics)\n", public, rep.Verified)
	fmt.Fprintf(w, "Dashboard: %s (local mode: \"Sign in as the demo user\"; it opens on %s)\n", dash.URL(), tenant)
	fmt.Fprintf(w, "  A conflict waits under Conflicts: contact %d's first name is %q in Keap and %q here.\n\n",
		demoConflictContact, demoConflictKeap, demoConflictLocal)
	fmt.Fprintf(w, "Try it: edit a contact with plain SQL and see Keap (the sandbox) have it seconds later:\n")
	fmt.Fprintf(w, "  psql '%s' -c \"update keap.contacts c set job_title = 'Edited in Postgres' from keapsync.accounts a where a.id = c.account_id and a.keap_tenant = '%s' and c.keap_id = 2\"\n", dbURL, tenant)
	fmt.Fprintf(w, "  curl -s %s/_sandbox/state | grep -o '\"job_title\":\"Edited in Postgres\"'\n\n", srv.URL())
	fmt.Fprintf(w, "And the other way: change a contact in Keap and watch it arrive in Postgres:\n")
	fmt.Fprintf(w, "  curl -s -X PATCH %s/_sandbox/contacts/1 -d '{\"given_name\": \"Changed in Keap\"}'\n", srv.URL())
	fmt.Fprintf(w, "  psql '%s' -c \"select keap_id, given_name from keap.contacts c join keapsync.accounts a on a.id = c.account_id where a.keap_tenant = '%s' and keap_id = 1\"\n\n", dbURL, tenant)
	fmt.Fprintf(w, "Point keapsync at the demo:\n  export %s\n", strings.Join(env, " \\\n         "))
	fmt.Fprintf(w, "  bin/keapsync auth status\n\n")
	if !cfg.Serve {
		return stopped()
	}
	fmt.Fprintln(w, "Serving until Ctrl-C; the database keeps running after it.")
	select {
	case <-ctx.Done():
	case <-server.Done():
	}
	return stopped()
}

// demoSecretKey reads the demo's sealing key from dir, creating it on first use.
func demoSecretKey(dir string) (string, error) {
	path := filepath.Join(dir, "secret.key")
	b, err := os.ReadFile(path)
	if err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("read demo secret key: %w", err)
	}
	key := keapauth.NewKey()
	if err := os.WriteFile(path, []byte(key+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write demo secret key: %w", err)
	}
	return key, nil
}

const (
	sqlDemoAdmin = `insert into keapsync.members (account_id, user_id, role) values ($1, $2, 'admin')
on conflict (account_id, user_id) do update set role = 'admin'`
	sqlDemoCounts = `select (select count(*) from keap.contacts where account_id = $1),
       (select count(*) from keap.tags where account_id = $1),
       (select count(*) from keap.orders where account_id = $1),
       (select count(*) from keap.subscriptions where account_id = $1)`
	sqlDemoManual = `insert into keapsync.conflict_policies (account_id, object_type, field, policy)
values ($1, 'contact', 'given_name', 'manual')
on conflict (account_id, object_type, field) do update set policy = 'manual'`
	sqlDemoLocalEdit = `update keap.contacts set given_name = $3 where account_id = $1 and keap_id = $2`
	sqlDemoConflicts = `select count(*) from keapsync.conflicts where account_id = $1 and status = 'open'`

	demoConflictContact = 3
	demoConflictKeap    = "Edited in Keap"
	demoConflictLocal   = "Edited in Postgres"
)

// printDemoCounts prints what the backfill brought, beside what Keap (the sandbox) holds: the
// dashboard's overview shows the same numbers.
func printDemoCounts(ctx context.Context, w io.Writer, pool *pgxpool.Pool, keap sandbox.State, account string) error {
	var contacts, tags, orders, subs int
	if err := pool.QueryRow(ctx, sqlDemoCounts, account).Scan(&contacts, &tags, &orders, &subs); err != nil {
		return fmt.Errorf("count the backfilled data: %w", err)
	}
	fmt.Fprintf(w, "\nIn Postgres now: %d contacts, %d tags, %d orders, %d subscriptions", contacts, tags, orders, subs)
	if contacts == len(keap.Contacts) && tags == len(keap.Tags) && orders == len(keap.Orders) && subs == len(keap.Subscriptions) {
		fmt.Fprintf(w, ", the same as Keap (the sandbox) holds\n")
		return nil
	}
	fmt.Fprintf(w, "; Keap (the sandbox) holds %d contacts, %d tags, %d orders, %d subscriptions\n",
		len(keap.Contacts), len(keap.Tags), len(keap.Orders), len(keap.Subscriptions))
	return nil
}

// demoConflict changes one contact's first name in Keap and here while neither side can tell the
// other (no hooks yet, no push yet), under the manual policy for that field, then lets a
// reconcile fetch Keap's version: the merge finds both changed and parks the field for a person.
func demoConflict(ctx context.Context, pool *pgxpool.Pool, srv *sandbox.Server, sw *ingest.Sweeper, account string) error {
	if _, err := pool.Exec(ctx, sqlDemoManual, account); err != nil {
		return err
	}
	if err := srv.EditContact(demoConflictContact, map[string]any{"given_name": demoConflictKeap}); err != nil {
		return err
	}
	if _, err := pool.Exec(ctx, sqlDemoLocalEdit, account, demoConflictContact, demoConflictLocal); err != nil {
		return err
	}
	if err := sw.Reconcile(ctx, account, []string{"contact"}); err != nil {
		return err
	}
	var open int
	if err := pool.QueryRow(ctx, sqlDemoConflicts, account).Scan(&open); err != nil {
		return err
	}
	if open != 1 {
		return fmt.Errorf("%d open conflicts, want 1", open)
	}
	return nil
}
