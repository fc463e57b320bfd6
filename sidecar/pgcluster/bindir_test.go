package pgcluster_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/keapsync/keapsync/sidecar/pgcluster"
)

// fakeServerDir is a directory holding (empty) initdb, pg_ctl and postgres.
func fakeServerDir(t *testing.T) string {
	t.Helper()
	d := t.TempDir()
	for _, b := range []string{"initdb", "pg_ctl", "postgres"} {
		if err := os.WriteFile(filepath.Join(d, b), nil, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// onPath puts a pg_config that prints dir as its --bindir first on PATH.
func onPath(t *testing.T, dir string) {
	t.Helper()
	bin := t.TempDir()
	script := "#!/bin/sh\necho " + dir + "\n"
	if err := os.WriteFile(filepath.Join(bin, "pg_config"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
}

// Without PG_BINDIR, pg_config's --bindir is used when it holds the server; when it does not
// (a client-only install), the newest /usr/lib/postgresql/<major>/bin of 15 or newer is, and
// without one the error says how to install the server.
func TestFindBinDirFallsBackToPgConfigThenTheNewestInstall(t *testing.T) {
	t.Setenv("PG_BINDIR", "")
	server := fakeServerDir(t)
	onPath(t, server)
	if d, err := pgcluster.FindBinDir(); err != nil || d != server {
		t.Errorf("pg_config's bindir with the server: %q, %v; want %s", d, err, server)
	}

	onPath(t, t.TempDir()) // client only
	d, err := pgcluster.FindBinDir()
	if err != nil {
		if !strings.Contains(err.Error(), pgcluster.InstallHint) {
			t.Errorf("no server anywhere: %v; want the install hint", err)
		}
		return
	}
	major, _ := strconv.Atoi(filepath.Base(filepath.Dir(d)))
	if !strings.HasPrefix(d, "/usr/lib/postgresql/") || major < 15 {
		t.Errorf("client-only pg_config: %q; want /usr/lib/postgresql/<15 or newer>/bin", d)
	}
	for _, other := range mustGlob(t, "/usr/lib/postgresql/*/bin") {
		n, _ := strconv.Atoi(filepath.Base(filepath.Dir(other)))
		if _, err := os.Stat(filepath.Join(other, "postgres")); err == nil && n > major {
			t.Errorf("chose %s over the newer %s", d, other)
		}
	}
}

func mustGlob(t *testing.T, pattern string) []string {
	t.Helper()
	m, err := filepath.Glob(pattern)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// A cluster that finds no server binaries fails every step naming PG_BINDIR, and is not
// running; a data directory that cannot be created fails Init before initdb runs.
func TestClusterWithoutServerSaysWhere(t *testing.T) {
	empty := t.TempDir()
	t.Setenv("PG_BINDIR", empty)
	ctx := context.Background()
	c := &pgcluster.Cluster{Dir: filepath.Join(t.TempDir(), "data")}
	for what, err := range map[string]error{"init": c.Init(ctx), "start": c.Start(ctx), "stop": c.Stop(ctx)} {
		if err == nil || !strings.Contains(err.Error(), "PG_BINDIR="+empty) {
			t.Errorf("%s: %v; want PG_BINDIR named", what, err)
		}
	}
	if c.Running(ctx) {
		t.Error("running without server binaries")
	}
	if _, err := os.Stat(c.Dir); !os.IsNotExist(err) {
		t.Errorf("Init without binaries created %s", c.Dir)
	}

	file := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	c = &pgcluster.Cluster{Dir: filepath.Join(file, "data"), BinDir: fakeServerDir(t)}
	if err := c.Init(ctx); err == nil || !strings.Contains(err.Error(), "create data directory") {
		t.Errorf("Init under a file: %v; want the data directory's error", err)
	}
}
