package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keapsync/keapsync/sidecar/devtools/pgtest"
	"github.com/keapsync/keapsync/sidecar/sandbox"
)

// printedError runs the CLI and returns the error line it printed (the last line of output).
func printedError(t *testing.T, args ...string) string {
	t.Helper()
	out, err := runApp(t, args...)
	if err == nil {
		t.Fatalf("keapsync %s succeeded:\n%s", strings.Join(args, " "), out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, "keapsync: ") {
		t.Fatalf("keapsync %s: last line is not the error:\n%s", strings.Join(args, " "), out)
	}
	for _, noise := range []string{"SQLSTATE", "tls error", "failed to connect to `", "No help topic"} {
		if strings.Contains(out, noise) {
			t.Errorf("keapsync %s shows %q:\n%s", strings.Join(args, " "), noise, out)
		}
	}
	return last
}

func TestDatabaseURLUnsetIsNamed(t *testing.T) {
	// Not parallel: it sets the environment, which every app in the process reads.
	t.Setenv("DATABASE_URL", "")
	os.Unsetenv("DATABASE_URL")
	for _, args := range [][]string{{"conflicts", "list"}, {"auth", "status"}, {"doctor"}, {"migrate"}} {
		if line := printedError(t, args...); !strings.Contains(line, "DATABASE_URL (--database-url) is required") {
			t.Errorf("keapsync %s: %s", strings.Join(args, " "), line)
		}
	}
}

// The server's refusal comes first and alone, not the TLS attempt that preceded it.
func TestConnectionRefusalIsOneLine(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	noTLS := regexp.MustCompile(`\?sslmode=disable$`).ReplaceAllString(url, "")
	bad := regexp.MustCompile(`/[^/]+$`).ReplaceAllString(noTLS, "/no_such_database")
	line := printedError(t, "conflicts", "list", "--database-url", bad)
	if line != `keapsync: connect to database (DATABASE_URL): database "no_such_database" does not exist` {
		t.Errorf("got %q", line)
	}
	// --log-level debug adds the driver's whole story.
	out, _ := runApp(t, "--log-level", "debug", "conflicts", "list", "--database-url", bad)
	if !strings.Contains(out, "keapsync: detail: failed to connect") {
		t.Errorf("debug shows no detail:\n%s", out)
	}
}

func TestDashboardWithoutSupabaseURL(t *testing.T) {
	// Not parallel: it sets the environment, which every app in the process reads.
	for _, v := range []string{"SUPABASE_URL", "SUPABASE_ANON_KEY"} {
		t.Setenv(v, "")
		os.Unsetenv(v)
	}
	line := printedError(t, "dashboard", "--database-url", pgtest.URL(t))
	if !strings.Contains(line, "SUPABASE_URL") || strings.Contains(line, "SUPABASE_ANON_KEY") {
		t.Errorf("got %q, want SUPABASE_URL named alone", line)
	}
}

// A wrong KEAP_API_URL (something that answers, but is not Keap) gets a hint. Its first answer
// is a 503, so the client logs a retry: log lines name their component once.
func TestWrongKeapAPIURLHints(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	notKeap := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		http.NotFound(w, r)
	}))
	defer notKeap.Close()
	out, err := runApp(t, "--log-level", "info", "hooks", "list", "--database-url", pgtest.URL(t), "--api-url", notKeap.URL, "--api-key-file", secretFile(t, "k"))
	if err == nil || !strings.Contains(out, "check KEAP_API_URL") {
		t.Errorf("hooks list against a wrong KEAP_API_URL: %v\n%s", err, out)
	}
	logged := 0
	for _, l := range strings.Split(out, "\n") {
		if n := strings.Count(l, "component="); n > 1 {
			t.Errorf("component named %d times: %s", n, l)
		}
		if strings.Contains(l, "component=") {
			logged++
		}
	}
	if logged == 0 {
		t.Errorf("no log line with a component:\n%s", out)
	}
}

func TestSecretKeyHelp(t *testing.T) {
	t.Parallel()
	out, err := runApp(t, "auth", "login", "--help")
	if err != nil || strings.Contains(out, "--secret-key keapsync keygen") || !strings.Contains(out, "--secret-key-file value") {
		t.Errorf("auth login --help: %v\n%s", err, out)
	}
}

func TestUnknownCommand(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"frobnicate"}, {"hooks", "frobnicate"}} {
		if line := printedError(t, args...); !strings.Contains(line, `unknown command "frobnicate"`) {
			t.Errorf("keapsync %s: %s", strings.Join(args, " "), line)
		}
	}
}

// The manage commands: flags after the id, one-line not-found errors that name the list command
// (which exists), and a filter by an unknown account fails.
func TestManageCommandsRoughEdges(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := demoSeededURL(t)
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var id string
	_ = pool.QueryRow(ctx, `select id::text from keapsync.conflicts where status = 'open'`).Scan(&id)
	if out, err := runApp(t, "conflicts", "resolve", id, "--keep", "keap", "--database-url", url); err != nil || !strings.Contains(out, "resolved (keap)") {
		t.Errorf("conflicts resolve %s --keep keap: %v\n%s", id, err, out)
	}
	if line := printedError(t, "deadletters", "retry", "99", "--database-url", url); line != "keapsync: no dead letter 99 (keapsync deadletters list --all lists them)" {
		t.Errorf("deadletters retry 99: %q", line)
	}
	if line := printedError(t, "conflicts", "list", "--account", "nope", "--database-url", url); !strings.Contains(line, `no account "nope"`) {
		t.Errorf("conflicts list --account nope: %q", line)
	}
	// rollback names a list command, and that command lists the ids rollback takes.
	line := printedError(t, "rollback", "--database-url", url)
	list := regexp.MustCompile(`\((keapsync [a-z ]+) lists them\)`).FindStringSubmatch(line)
	if list == nil {
		t.Fatalf("rollback without an id: %q names no list command", line)
	}
	out, err := runApp(t, append(strings.Fields(list[1])[1:], "--database-url", url)...)
	var newest int64
	_ = pool.QueryRow(ctx, `select max(id) from keapsync.change_history`).Scan(&newest)
	if err != nil || !strings.Contains(out, "ROLLED BACK BY") || !strings.Contains(out, strconv.FormatInt(newest, 10)) {
		t.Fatalf("%s: %v\n%s", list[1], err, out)
	}
	if out, err := runApp(t, "rollback", strconv.FormatInt(newest, 10), "--database-url", url); err != nil || !strings.Contains(out, "rolled back") {
		t.Errorf("rollback %d: %v\n%s", newest, err, out)
	}
}

// Against the sandbox with a personal key: hooks list has a header, and a second backfill counts its own rows, not the first one's again.
func TestKeapCommandsRoughEdges(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sb, err := sandbox.New(sandbox.Options{Seed: 3, Contacts: 20, Unthrottled: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := sb.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	url := pgtest.URL(t)
	common := []string{"--database-url", url, "--api-url", sb.URL() + "/crm/rest", "--api-key-file", secretFile(t, sb.Credentials().PersonalKey)}

	out, err := runApp(t, append([]string{"hooks", "list"}, common...)...)
	if err != nil || !regexp.MustCompile(`(?m)^KEY\s+EVENT\s+STATUS\s+OWNER\s+URL$`).MatchString(out) {
		t.Errorf("hooks list: %v\n%s", err, out)
	}

	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	tags := len(sb.Snapshot().Tags)
	for run := 1; run <= 3; run++ {
		if out, err := runApp(t, append([]string{"backfill", "--objects", "tags"}, common...)...); err != nil {
			t.Fatalf("backfill run %d: %v\n%s", run, err, out)
		}
		var done int
		var finished bool
		if err := pool.QueryRow(ctx, `select rows_done, finished_at is not null from keapsync.sync_cursors
		    where object_type = 'tag' and kind = 'backfill'`).Scan(&done, &finished); err != nil {
			t.Fatal(err)
		}
		if done != tags || !finished {
			t.Errorf("backfill run %d: the row says %d rows (finished %v), want this run's %d", run, done, finished, tags)
		}
	}
}
