package pgcluster_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/keapsync/keapsync/sidecar/pgcluster"
)

// A cluster's life as the demo and the tests use it: not initialized, then initialized, started
// with logical replication on 127.0.0.1 and the extra settings, running, stopped.
func TestClusterLifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "keapsync-pgcluster-test-") // handed over to the server's user when run as root
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	port, err := pgcluster.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	c := &pgcluster.Cluster{Dir: filepath.Join(dir, "data"), Port: port, Config: []string{"fsync=off", "application_name=pgcluster_test"}}
	if c.Initialized() || c.Running(ctx) {
		t.Fatal("an empty directory is an initialized or running cluster")
	}
	if err := c.Init(ctx); err != nil {
		t.Fatal(err)
	}
	if !c.Initialized() {
		t.Fatal("not initialized after Init")
	}
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop(context.Background()) })
	if !c.Running(ctx) {
		t.Error("not running after Start")
	}
	if p, err := c.ServingPort(); err != nil || p != port {
		t.Errorf("serving port %d (%v), want %d", p, err, port)
	}
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	var wal, fsync string
	err = conn.QueryRow(ctx, `select current_setting('wal_level'), current_setting('fsync')`).Scan(&wal, &fsync)
	conn.Close(ctx)
	if err != nil || wal != "logical" || fsync != "off" {
		t.Errorf("wal_level %q, fsync %q (%v), want logical and the extra setting", wal, fsync, err)
	}
	if err := c.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if c.Running(ctx) {
		t.Error("running after Stop")
	}
	if _, err := c.ServingPort(); err == nil {
		t.Error("a stopped cluster has a serving port")
	}
	if err := c.Start(ctx); err != nil { // a stopped cluster starts again on its data
		t.Fatal(err)
	}
	if err := c.Stop(ctx); err != nil {
		t.Fatal(err)
	}

	// Another process holds the port: the error says so, with the server log's words, where
	// pg_ctl said only that it could not start the server.
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	err = c.Start(ctx)
	if !errors.Is(err, pgcluster.ErrPortInUse) || !strings.Contains(err.Error(), "Address already in use") {
		c.Stop(ctx)
		t.Errorf("start on a port in use: %v; want ErrPortInUse and the log's reason", err)
	}
}

// Without the server binaries every step fails and says where to get them.
func TestMissingBinaries(t *testing.T) {
	t.Parallel()
	c := &pgcluster.Cluster{Dir: t.TempDir(), BinDir: filepath.Join(t.TempDir(), "nothing-here")}
	ctx := context.Background()
	for what, err := range map[string]error{"init": c.Init(ctx), "start": c.Start(ctx), "stop": c.Stop(ctx)} {
		if err == nil {
			t.Errorf("%s without binaries: no error", what)
		} else if !strings.Contains(err.Error(), "nothing-here") && !strings.Contains(err.Error(), "PG_BINDIR") {
			t.Errorf("%s: %v", what, err)
		}
	}
	if c.Running(ctx) {
		t.Error("running without binaries")
	}
}

// PG_BINDIR wins when it holds the server binaries and is refused, naming itself, when not.
func TestFindBinDir(t *testing.T) {
	found, err := pgcluster.FindBinDir()
	if err != nil {
		t.Fatal(err)
	}
	empty := t.TempDir()
	t.Setenv("PG_BINDIR", found)
	if d, err := pgcluster.FindBinDir(); err != nil || d != found {
		t.Errorf("PG_BINDIR=%s: %q, %v", found, d, err)
	}
	t.Setenv("PG_BINDIR", empty)
	if _, err := pgcluster.FindBinDir(); err == nil || !strings.Contains(err.Error(), "PG_BINDIR="+empty) ||
		!strings.Contains(err.Error(), pgcluster.InstallHint) {
		t.Errorf("PG_BINDIR without binaries: %v", err)
	}
}

// FreePort never hands out a port twice: the kernel offers a closed port again, here within
// about a hundred calls, and two servers then raced for it.
func TestFreePortNeverRepeats(t *testing.T) {
	t.Parallel()
	seen := map[int]bool{}
	for i := range 1000 {
		p, err := pgcluster.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		if seen[p] {
			t.Fatalf("call %d returned port %d again", i, p)
		}
		seen[p] = true
	}
}
