package main

import (
	"bufio"
	"context"
	"errors"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/keapsync/keapsync/sidecar/devtools/pgtest"
	"github.com/keapsync/keapsync/sql/compat"
)

// TestSupabaseGuide runs every `sh` and `sql` block of docs/supabase.md, in order, against a
// local Supabase-like database: the guide's commands are the ones that work.
func TestSupabaseGuide(t *testing.T) {
	// Not parallel: it sets the environment, which every app in the process reads.
	ctx := context.Background()
	cli, err := filepath.Abs("../../../.ci/supabase-cli/node_modules/.bin/supabase")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(cli); err != nil {
		t.Fatalf("the Supabase CLI is not installed: run `npm ci` in .ci/supabase-cli (make test does): %v", err)
	}
	owner := pgtest.EmptyURL(t)
	pgtest.LockRoles(t) // the guide grants to the cluster's roles
	conn, err := pgx.Connect(ctx, owner)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, compat.Bootstrap); err != nil { // what a Supabase project has
		t.Fatal(err)
	}
	work := t.TempDir()
	project := filepath.Join(work, "myproject")
	if err := os.MkdirAll(filepath.Join(project, "supabase"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(project, "supabase", "config.toml"), []byte("project_id = \"myproject\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{
		"DATABASE_URL":  withUser(t, owner, url.UserPassword("postgres", "postgres")), // the CLI insists on a password
		"SIDECAR_URL":   withUser(t, owner, url.User("keapsync_sidecar")),
		"DASHBOARD_URL": withUser(t, owner, url.User("keapsync_dashboard")),
	}
	t.Setenv("KEAP_API_URL", "http://127.0.0.1:1/crm/rest") // no Keap here: the clock check only warns

	blocks := guideBlocks(t, "../../../docs/supabase.md")
	ran := 0
	for _, b := range blocks {
		switch b.lang {
		case "sql":
			if _, err := conn.Exec(ctx, b.text); err != nil {
				t.Fatalf("docs/supabase.md line %d: %v\n%s", b.line, err, b.text)
			}
			ran++
		case "sh":
			for _, line := range strings.Split(b.text, "\n") {
				if line = strings.TrimSpace(line); line == "" || strings.HasPrefix(line, "#") {
					continue
				}
				if strings.HasPrefix(line, "keapsync supabase uninstall") {
					checkDashboardRole(t, vars["DASHBOARD_URL"]) // while it is installed
				}
				args := shellWords(os.Expand(line, func(k string) string { return vars[k] }))
				for i, a := range args {
					args[i] = strings.Replace(a, "./myproject", project, 1)
				}
				var out string
				switch args[0] {
				case "keapsync":
					out, err = runApp(t, args[1:]...)
				case "supabase":
					cmd := exec.Command(cli, args[1:]...)
					cmd.Dir, cmd.Env = work, append(os.Environ(), "DO_NOT_TRACK=1", "HOME="+work)
					var b []byte
					b, err = cmd.CombinedOutput()
					out = string(b)
				default:
					t.Fatalf("docs/supabase.md line %d: the guide test does not know how to run %q", b.line, args[0])
				}
				if err != nil {
					t.Fatalf("docs/supabase.md line %d: %s: %v\n%s", b.line, line, err, out)
				}
				t.Logf("%s\n%s", line, out)
				ran++
			}
		}
	}
	if ran < 6 {
		t.Fatalf("ran only %d commands from docs/supabase.md", ran)
	}
	var left int
	if err := conn.QueryRow(ctx, `select count(*) from pg_namespace where nspname in ('keap', 'keapsync')`).Scan(&left); err != nil || left != 0 {
		t.Errorf("after the guide's uninstall: %d keapsync schemas left (%v)", left, err)
	}
	if files, _ := filepath.Glob(filepath.Join(project, "supabase", "migrations", "*_keapsync_*.sql")); len(files) != 0 {
		t.Errorf("after the guide's uninstall: %d keapsync files left in the project", len(files))
	}
}

// checkDashboardRole: keapsync_dashboard reads nothing as itself and may become authenticated,
// with a person's claims, for one transaction.
func checkDashboardRole(t *testing.T, dashboardURL string) {
	t.Helper()
	ctx := context.Background()
	dash, err := pgx.Connect(ctx, dashboardURL)
	if err != nil {
		t.Fatal(err)
	}
	defer dash.Close(ctx)
	var pgErr *pgconn.PgError
	if _, err := dash.Exec(ctx, `select * from keap.contacts`); !errors.As(err, &pgErr) || pgErr.Code != "42501" {
		t.Errorf("keapsync_dashboard reading keap.contacts as itself: %v, want permission denied", err)
	}
	err = pgx.BeginFunc(ctx, dash, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `select set_config('role', 'authenticated', true),
		  set_config('request.jwt.claims', '{"sub": "00000000-0000-4000-8000-000000000001", "role": "authenticated"}', true)`); err != nil {
			return err
		}
		var n int
		return tx.QueryRow(ctx, `select count(*) from keap.contacts`).Scan(&n)
	})
	if err != nil {
		t.Errorf("keapsync_dashboard as a signed-in person: %v", err)
	}
}

type guideBlock struct {
	lang, text string
	line       int
}

// guideBlocks returns the fenced blocks of a Markdown file whose info string is exactly sh or
// sql (`sh hosted` and others are not run).
func guideBlocks(t *testing.T, path string) []guideBlock {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		out []guideBlock
		cur *guideBlock
		n   int
	)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		n++
		line := sc.Text()
		switch {
		case cur == nil && strings.HasPrefix(line, "```"):
			cur = &guideBlock{lang: strings.TrimSpace(line[3:]), line: n + 1}
		case cur != nil && line == "```":
			if cur.lang == "sh" || cur.lang == "sql" {
				out = append(out, *cur)
			}
			cur = nil
		case cur != nil:
			cur.text += line + "\n"
		}
	}
	return out
}

// shellWords splits a command line at spaces outside double quotes, as the shell would for the
// guide's simple commands.
func shellWords(s string) []string {
	var (
		out   []string
		word  strings.Builder
		quote bool
		any   bool
	)
	for _, r := range s {
		switch {
		case r == '"':
			quote, any = !quote, true
		case r == ' ' && !quote:
			if any {
				out = append(out, word.String())
			}
			word.Reset()
			any = false
		default:
			word.WriteRune(r)
			any = true
		}
	}
	if any {
		out = append(out, word.String())
	}
	return out
}

// withUser is dbURL logging in as user, in the form the Supabase CLI accepts.
func withUser(t *testing.T, dbURL string, user *url.Userinfo) string {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	u.Scheme, u.User = "postgresql", user
	return u.String()
}
