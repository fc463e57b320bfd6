package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/urfave/cli/v2"

	"github.com/keapsync/keapsync/dashboard"
	"github.com/keapsync/keapsync/sidecar/devtools/pgtest"
	"github.com/keapsync/keapsync/sidecar/ingest"
	"github.com/keapsync/keapsync/sidecar/pgcluster"
)

// envRunMain makes the test binary run keapsync's main() instead of the tests, so a test can
// watch the process as a person's shell does: its exit code, and how it answers a signal.
const envRunMain = "KEAPSYNC_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(envRunMain) == "1" {
		main()
		os.Exit(0)
	}
	pgtest.Main(m)
}

// runApp runs the CLI as a person would and returns what it printed.
func runApp(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	app := newApp()
	app.Writer, app.ErrWriter = &out, &out
	err := run(context.Background(), app, append([]string{"keapsync", "--log-level", "warn"}, args...))
	return out.String(), err
}

// secretFiles writes the OAuth secrets to files and returns the flags naming them, as an operator
// passes secrets (never on the command line); an empty value is left out.
func secretFiles(t *testing.T, clientSecret, key string) []string {
	t.Helper()
	var args []string
	for flag, v := range map[string]string{"--client-secret-file": clientSecret, "--secret-key-file": key} {
		if v != "" {
			args = append(args, flag, secretFile(t, v))
		}
	}
	return args
}

// secretFile writes v to a private file and names it, as an operator passes a secret.
func secretFile(t *testing.T, v string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(f, []byte(v+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestMigrateCommand(t *testing.T) {
	t.Parallel()
	url := pgtest.EmptyURL(t)
	pgtest.LockRoles(t) // migrating grants to the cluster's roles
	out, err := runApp(t, "migrate", "--database-url", url)
	if err != nil || !strings.Contains(out, "0 already current") {
		t.Fatalf("first migrate: %v\n%s", err, out)
	}
	out, err = runApp(t, "migrate", "--database-url", url)
	if err != nil || !strings.Contains(out, "0 applied") {
		t.Fatalf("second migrate: %v\n%s", err, out)
	}
}

func TestMigrateCommandUnreachableDatabase(t *testing.T) {
	t.Parallel()
	port, err := pgcluster.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	_, err = runApp(t, "migrate", "--database-url", "postgres://postgres@127.0.0.1:"+strconv.Itoa(port)+"/x?sslmode=disable")
	if err == nil || !strings.Contains(err.Error(), "connect to database") {
		t.Fatalf("err = %v, want a connection error that says what it was doing", err)
	}
}

// A demo whose port another server holds says so, and how to choose another, where pg_ctl says
// only that it could not start the server.
func TestDemoSaysWhenItsPortIsTaken(t *testing.T) {
	t.Parallel()
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	port := strconv.Itoa(held.Addr().(*net.TCPAddr).Port)
	out, err := runApp(t, "demo", "--dir", t.TempDir(), "--pg-port", port)
	if !errors.Is(err, pgcluster.ErrPortInUse) || !strings.Contains(out, "port "+port+", which another server holds") ||
		!strings.Contains(out, "--pg-port") {
		t.Errorf("demo on a taken port: %v\n%s", err, out)
	}
}

// A demo run with another --pg-port than the run that left the server running moves the server
// to the new port: the printed psql line works, where it was refused (TestDemoWalkInBrowser
// failed so when its first run, retried on other ports, left the server on the old one).
func TestDemoDatabaseMovesToTheAskedPort(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var ports [2]int
	for i := range ports {
		p, err := pgcluster.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = p
	}
	dir := filepath.Join(t.TempDir(), "pg")
	before := &pgcluster.Cluster{Dir: dir, Port: ports[0]}
	if err := before.Init(ctx); err != nil {
		t.Fatal(err)
	}
	if err := before.Start(ctx); err != nil {
		t.Fatal(err)
	}
	now := &pgcluster.Cluster{Dir: dir, Port: ports[1]}
	t.Cleanup(func() { _ = now.Stop(context.Background()) })
	url, err := startDemoDatabase(ctx, now)
	if err != nil {
		t.Fatalf("demo database on port %d after a run on %d: %v", ports[1], ports[0], err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("the printed URL %s: %v", url, err)
	}
	conn.Close(ctx)
	if p, err := now.ServingPort(); err != nil || p != ports[1] {
		t.Errorf("the server listens on %d (%v), want %d", p, err, ports[1])
	}
}

// The demo starts its own cluster, loads the sample data, and can run again on the same data.
func TestDemoIsRepeatable(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	port, err := pgcluster.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	sbPort, err := pgcluster.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	listen, err := pgcluster.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	dash, err := pgcluster.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"demo", "--dir", dir, "--pg-port", strconv.Itoa(port), "--serve=false", "--listen", "127.0.0.1:" + strconv.Itoa(listen),
		"--dashboard-listen", "127.0.0.1:" + strconv.Itoa(dash),
		"--sandbox-addr", "127.0.0.1:" + strconv.Itoa(sbPort), "--sandbox-contacts", "50"}
	t.Cleanup(func() { _, _ = runApp(t, append(args, "--stop")...) })
	url := "postgres://postgres@127.0.0.1:" + strconv.Itoa(port) + "/keapsync?sslmode=disable"
	for run := 1; run <= 2; run++ {
		out, err := runApp(t, args...)
		if err != nil {
			t.Fatalf("demo run %d: %v\n%s", run, err, out)
		}
		// What it prints is true on every run: the counts match Keap's, one conflict waits in
		// the account the demo user administers, and nothing is left from the last run.
		for _, want := range []string{"In Postgres now: 50 contacts", "the same as Keap (the sandbox) holds", "psql 'postgres://",
			"Connected through OAuth: account", "administered by the demo user", fmt.Sprintf("%d hooks verified", len(ingest.EventKeys)), "Dashboard: http://",
			"A conflict waits under Conflicts"} {
			if !strings.Contains(out, want) {
				t.Fatalf("demo run %d does not say %q:\n%s", run, want, out)
			}
		}
		conn, err := pgx.Connect(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		var accounts, admins, conflicts, edited int
		err = conn.QueryRow(context.Background(), `select (select count(*) from keapsync.accounts),
		    (select count(*) from keapsync.members m join keapsync.accounts a on a.id = m.account_id
		      where a.keap_tenant = 'ks001.infusionsoft.com' and m.user_id = $1 and m.role = 'admin'),
		    (select count(*) from keapsync.conflicts where status = 'open'),
		    (select count(*) from keap.contacts where given_name = 'Edited in Postgres')`, dashboard.DemoUserID).
			Scan(&accounts, &admins, &conflicts, &edited)
		conn.Close(context.Background())
		if err != nil || accounts != 1 || admins != 1 || conflicts != 1 || edited != 1 {
			t.Fatalf("demo run %d: %v: %d accounts, %d demo admins of ks001, %d open conflicts, %d locally edited; want 1 each",
				run, err, accounts, admins, conflicts, edited)
		}
	}
	// The connected account shows in auth status without anyone typing a credential.
	out, err := runApp(t, "auth", "status", "--database-url", url)
	if err != nil || !strings.Contains(out, "ks001.infusionsoft.com") || strings.Contains(out, "not connected") {
		t.Fatalf("auth status after the demo: %v\n%s", err, out)
	}
}

// Two demos at once: the second says so instead of failing on a busy port.
func TestSecondDemoSaysOneIsRunning(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	unlock, err := lockDemo(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	_, err = runApp(t, "demo", "--dir", dir)
	if err == nil || !strings.Contains(err.Error(), "a demo is already running") {
		t.Fatalf("second demo: %v", err)
	}
}

// Every command's flags parse (a name defined twice panics only when the command runs).
func TestEveryCommandParses(t *testing.T) {
	t.Parallel()
	var walk func(prefix []string, cmds []*cli.Command)
	walk = func(prefix []string, cmds []*cli.Command) {
		for _, cmd := range cmds {
			args := append(append([]string{}, prefix...), cmd.Name)
			if len(cmd.Subcommands) > 0 {
				walk(args, cmd.Subcommands)
				continue
			}
			if out, err := runApp(t, append(args, "--help")...); err != nil || !strings.Contains(out, "USAGE") {
				t.Errorf("keapsync %s --help: %v\n%s", strings.Join(args, " "), err, out)
			}
		}
	}
	walk(nil, newApp().Commands)
}

// A setting from the environment is the value of that run only: the flags are package
// variables, and urfave/cli writes the environment's value into the flag it parses, so a shared
// flag kept it as every later run's default (and apps running at once wrote the same flags).
func TestEnvironmentDoesNotOutliveItsRun(t *testing.T) {
	// Not parallel: it sets the environment, which every app in the process reads.
	const fromEnv = "http://from-the-environment.example/crm/rest"
	t.Setenv("KEAP_API_URL", fromEnv)
	if out, err := runApp(t, "doctor", "--help"); err != nil { // parses the flags, the environment's too
		t.Fatalf("doctor --help with KEAP_API_URL set: %v\n%s", err, out)
	}
	os.Unsetenv("KEAP_API_URL") // t.Setenv restores it after the test
	if out, err := runApp(t, "doctor", "--help"); err != nil || strings.Contains(out, fromEnv) || !strings.Contains(out, `default: "https://api.infusionsoft.com/crm/rest"`) {
		t.Fatalf("doctor --help after KEAP_API_URL was unset still shows it: %v\n%s", err, out)
	}
}
