package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/keapsync/keapsync/sidecar/devtools/pgtest"
	"github.com/keapsync/keapsync/sidecar/devtools/testlog"
	"github.com/keapsync/keapsync/sidecar/pgcluster"
	"github.com/keapsync/keapsync/sidecar/sandbox"
)

// The global flags are checked before anything connects; no command word prints the help, and a
// word that is no subcommand of a command names the command.
func TestGlobalFlagsAndHelp(t *testing.T) {
	t.Parallel()
	if out, err := runApp(t); err != nil || !strings.Contains(out, "COMMANDS:") {
		t.Errorf("no command: %v\n%s", err, out)
	}
	if out, err := runApp(t, "hooks"); err != nil || !strings.Contains(out, "ensure") || !strings.Contains(out, "delete") {
		t.Errorf("hooks without a subcommand: %v\n%s", err, out)
	}
	if line := printedError(t, "hooks", "lsit"); line != `keapsync: unknown command "lsit" for hooks (keapsync hooks --help lists them)` {
		t.Errorf("hooks lsit: %s", line)
	}
	db := []string{"dashboard", "--local", "--database-url", "postgres://postgres@127.0.0.1:1/x"}
	if line := printedError(t, append([]string{"--log-level", "loud"}, db...)...); !strings.HasPrefix(line, "keapsync: --log-level: ") {
		t.Errorf("--log-level loud: %s", line)
	}
	if line := printedError(t, append([]string{"--log-format", "xml"}, db...)...); line != `keapsync: --log-format: want text or json, got "xml"` {
		t.Errorf("--log-format xml: %s", line)
	}
	app := newApp()
	if got := intersperse(app, []string{"keapsync"}); !slices.Equal(got, []string{"keapsync"}) {
		t.Errorf("intersperse of the program alone: %q", got)
	}
	// Flags after the positional argument move before it; after "--" nothing moves.
	got := intersperse(app, []string{"keapsync", "conflicts", "resolve", "7", "--keep", "keap", "--", "--not-a-flag"})
	if want := []string{"keapsync", "conflicts", "resolve", "--keep", "keap", "7", "--", "--not-a-flag"}; !slices.Equal(got, want) {
		t.Errorf("intersperse = %q, want %q", got, want)
	}
}

// A PostgreSQL error reaches the person as its message alone; SQLSTATE, detail and hint wait for
// --log-level debug. A connection failure of several lines is said by its last.
func TestOneLineKeepsPostgresDetailForDebug(t *testing.T) {
	t.Parallel()
	pe := &pgconn.PgError{Severity: "ERROR", Code: "P0001", Message: "keapsync: account is paused", Detail: "since noon", Hint: "resume it"}
	line, detail := oneLine(fmt.Errorf("resolve conflict 3: %w", pe))
	if line != "resolve conflict 3: account is paused" {
		t.Errorf("line = %q", line)
	}
	for _, want := range []string{"(SQLSTATE P0001)", "; detail: since noon", "; hint: resume it"} {
		if !strings.Contains(detail, want) {
			t.Errorf("detail %q does not say %q", detail, want)
		}
	}
	ce := &connectError{err: errors.New("failed to connect:\n  tls: something\n  server said: go away")}
	if got := ce.Error(); got != "connect to database (DATABASE_URL): server said: go away" {
		t.Errorf("connectError = %q", got)
	}
}

// doctor exits non-zero with the number of failures; a DATABASE_URL it cannot connect to is
// explained by what is wrong with it (here: the pooler's port) before the driver's words.
func TestDoctorCommandCountsProblems(t *testing.T) {
	t.Parallel()
	port, err := pgcluster.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	dead := "postgres://postgres@127.0.0.1:" + strconv.Itoa(port) + "/postgres?sslmode=disable"
	out, err := runApp(t, "doctor", "--database-url", pgtest.URL(t), "--dashboard-database-url", dead)
	if err == nil || err.Error() != "1 problem(s) need attention" || !regexp.MustCompile(`FAIL\s+dashboard role\s+connect: `).MatchString(out) ||
		!strings.Contains(out, "-> check --dashboard-database-url") {
		t.Errorf("doctor with an unreachable dashboard database: %v\n%s", err, out)
	}
	line := printedError(t, "doctor", "--database-url", "postgres://postgres.abcdefgh@127.0.0.1:6543/postgres?sslmode=disable&connect_timeout=5")
	if !strings.Contains(line, "Supabase's connection pooler") || !strings.Contains(line, "transaction mode") {
		t.Errorf("doctor on the pooler's port: %s", line)
	}
}

// Against the sandbox, connected by OAuth (a personal key's budget of 4 calls a second would make
// the 33 subscriptions slow): hooks ensure says when Keap cannot verify the public
// URL, hooks list shows the subscriptions as keapsync's, hooks delete removes them, and
// reconcile --deletes applies a delete no hook reported.
func TestHooksAndReconcileDeletes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sb, err := sandbox.New(sandbox.Options{Seed: 5, Contacts: 3, AutoApprove: true, Unthrottled: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := sb.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	port, err := pgcluster.FreePort() // where serve would listen, but nothing does
	if err != nil {
		t.Fatal(err)
	}
	public := "http://127.0.0.1:" + strconv.Itoa(port)
	creds := sb.Credentials()
	common := append([]string{"--database-url", pgtest.URL(t), "--client-id", creds.ClientID,
		"--auth-url", sb.URL() + "/app/oauth/authorize", "--token-url", sb.URL() + "/token"}, secretFiles(t, creds.ClientSecret, testKey)...)
	if out, err := runApp(t, append([]string{"auth", "login", "--follow"}, common...)...); err != nil {
		t.Fatalf("auth login: %v\n%s", err, out)
	}
	common = append(common, "--api-url", sb.URL()+"/crm/rest")
	sweep := slices.Clone(common)
	common = append(common, "--public-url", public)
	hooks := func(args ...string) (string, error) {
		return runApp(t, append(append([]string{"hooks"}, args...), common...)...)
	}

	out, err := hooks("ensure")
	if err == nil || !strings.Contains(out, "Keap could not verify contactGroup.add") || !strings.Contains(out, "is "+public+" reachable from Keap?") {
		t.Errorf("hooks ensure with nobody at the public URL: %v\n%s", err, out)
	}
	out, err = hooks("list")
	ours := regexp.MustCompile(`(?m)^\S+\s+contact\.add\s+\S+\s+keapsync\s+` + regexp.QuoteMeta(public) + `/hooks/\S+…$`)
	if err != nil || !ours.MatchString(out) {
		t.Errorf("hooks list after ensure: %v\n%s", err, out)
	}
	out, err = hooks("delete")
	if err != nil || !regexp.MustCompile(`(?m)^deleted \S+ \(contact\.add\)$`).MatchString(out) {
		t.Errorf("hooks delete: %v\n%s", err, out)
	}
	if left := len(sb.Snapshot().Hooks); left != 0 {
		t.Errorf("%d subscriptions left at Keap after hooks delete", left)
	}

	if out, err := runApp(t, append([]string{"backfill", "--objects", "contacts"}, sweep...)...); err != nil {
		t.Fatalf("backfill: %v\n%s", err, out)
	}
	gone, err := strconv.ParseInt(fmt.Sprint(sb.Snapshot().Contacts[0]["id"]), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	if err := sb.DeleteContact(gone); err != nil {
		t.Fatal(err)
	}
	out, err = runApp(t, append([]string{"reconcile", "--objects", "contacts", "--deletes"}, sweep...)...)
	if err != nil || !strings.Contains(out, "applied 1 deletes no hook reported") {
		t.Errorf("reconcile --deletes after a delete in Keap: %v\n%s", err, out)
	}
}

// Commands given an account that does not exist say so and name where accounts are listed.
func TestUnknownAccountIsNamed(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	if line := printedError(t, "prune", "--account", "nosuch.example", "--database-url", url); line !=
		`keapsync: no account "nosuch.example" (keapsync auth status lists them)` {
		t.Errorf("prune: %s", line)
	}
	if line := printedError(t, "auth", "revoke", "--account", "nosuch.example", "--database-url", url, "--client-id", "c",
		"--client-secret-file", secretFile(t, "s"), "--secret-key-file", secretFile(t, testKey)); line !=
		`keapsync: no account "nosuch.example" (give an account id or tenant; see keapsync auth status)` {
		t.Errorf("auth revoke: %s", line)
	}
}

var testKey = strings.Repeat("A", 43) + "="

// keapsync sandbox and keapsync dashboard --local serve until interrupted, and say where.
func TestServingCommandsStopOnInterrupt(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		says string
	}{
		{[]string{"sandbox", "--addr", "127.0.0.1:0", "--contacts", "1"}, "personal key:"},
		{[]string{"dashboard", "--local", "--listen", "127.0.0.1:0", "--database-url", pgtest.URL(t)}, "keapsync dashboard: http://"},
	} {
		ctx, cancel := context.WithCancel(context.Background())
		var out testlog.Buffer
		app := newApp()
		app.Writer, app.ErrWriter = &out, &out
		done := make(chan error, 1)
		go func() { done <- run(ctx, app, append([]string{"keapsync", "--log-level", "warn"}, tc.args...)) }()
		for !strings.Contains(out.String(), tc.says) {
			select {
			case err := <-done:
				t.Fatalf("keapsync %s ended: %v\n%s", tc.args[0], err, out.String())
			case <-time.After(20 * time.Millisecond):
			}
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("keapsync %s interrupted: %v\n%s", tc.args[0], err, out.String())
		}
	}
}

// serve with --dashboard-local runs the dashboard beside the sync, on its own address, and with
// a notify webhook set; both stop with serve.
func TestServeRunsTheDashboardToo(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sb, err := sandbox.New(sandbox.Options{Seed: 6, Contacts: 1, Unthrottled: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := sb.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	free := func() string {
		port, err := pgcluster.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		return "127.0.0.1:" + strconv.Itoa(port)
	}
	dash := free()
	_, stop := startServe(t, ctx, []string{"--listen", free(), "--no-push", "--reconcile-every", "0s",
		"--database-url", pgtest.URL(t), "--api-url", sb.URL() + "/crm/rest", "--api-key-file", secretFile(t, sb.Credentials().PersonalKey),
		"--dashboard-local", "--dashboard-listen", dash, "--notify-webhook-url-file", secretFile(t, "http://127.0.0.1:1/notify")})
	waitFor(t, "the dashboard to answer", func() bool {
		resp, err := http.Get("http://" + dash + "/")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == http.StatusOK
	})
	cancel()
	stop()
}
