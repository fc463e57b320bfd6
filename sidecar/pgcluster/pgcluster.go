// Package pgcluster runs a private PostgreSQL cluster from the installed server binaries, for the
// test harness (a throwaway cluster per run) and for `make demo` (a persistent one under .data/).
//
// PostgreSQL refuses to run as root, so when this process is root the server runs as the
// `postgres` system user and the data directory is handed to that user.
package pgcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// InstallHint tells a person how to get the server binaries on Debian/Ubuntu.
const InstallHint = "install PostgreSQL 15 or newer (Debian/Ubuntu: apt-get install postgresql-15), " +
	"or point PG_BINDIR at the directory holding initdb, pg_ctl and postgres"

// Cluster is one PostgreSQL data directory and the server that serves it on 127.0.0.1.
type Cluster struct {
	Dir    string   // data directory; created by Init
	Port   int      // TCP port on 127.0.0.1
	BinDir string   // where initdb and pg_ctl live; FindBinDir when empty
	Config []string // extra `-c name=value` server settings, e.g. fsync=off for tests
}

// FindBinDir locates the server binaries: $PG_BINDIR, then pg_config --bindir, then the newest
// /usr/lib/postgresql/<major>/bin with major 15 or newer.
func FindBinDir() (string, error) {
	if d := os.Getenv("PG_BINDIR"); d != "" {
		if hasServer(d) {
			return d, nil
		}
		return "", fmt.Errorf("PG_BINDIR=%s has no initdb/pg_ctl/postgres: %s", d, InstallHint)
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		if d := strings.TrimSpace(string(out)); hasServer(d) {
			return d, nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return major(dirs[i]) > major(dirs[j]) })
	for _, d := range dirs {
		if major(d) >= 15 && hasServer(d) {
			return d, nil
		}
	}
	return "", errors.New("no PostgreSQL server binaries found: " + InstallHint)
}

func major(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

func hasServer(d string) bool {
	for _, b := range []string{"initdb", "pg_ctl", "postgres"} {
		if _, err := os.Stat(filepath.Join(d, b)); err != nil {
			return false
		}
	}
	return true
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago, and never one it returned
// before in this process. The kernel offers a port it just offered again once it is closed (here
// within about a hundred calls), so tests that start servers side by side were given the same
// port, and one of the servers could not listen.
func FreePort() (int, error) {
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("find a free port: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if _, before := handedOut.LoadOrStore(port, true); !before {
			return port, nil
		}
	}
	return 0, errors.New("find a free port: the system offered only ports handed out before")
}

// handedOut are the ports FreePort returned.
var handedOut sync.Map

// Initialized reports whether Dir already holds a cluster.
func (c *Cluster) Initialized() bool {
	_, err := os.Stat(filepath.Join(c.Dir, "PG_VERSION"))
	return err == nil
}

// Init creates the data directory with initdb (superuser `postgres`, trust auth on loopback).
func (c *Cluster) Init(ctx context.Context) error {
	if err := c.resolveBin(); err != nil {
		return err
	}
	if err := os.MkdirAll(c.Dir, 0o700); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	if err := c.handOver(c.Dir); err != nil {
		return err
	}
	_, err := c.run(ctx, "initdb", "-D", c.Dir, "-U", "postgres", "--auth=trust", "-E", "UTF8",
		"--locale=C", "--no-sync")
	if err != nil {
		return fmt.Errorf("initdb %s: %w", c.Dir, err)
	}
	return nil
}

// Start starts the server with wal_level=logical and waits until it accepts connections.
func (c *Cluster) Start(ctx context.Context) error {
	if err := c.resolveBin(); err != nil {
		return err
	}
	opts := []string{
		"-p " + strconv.Itoa(c.Port),
		"-c listen_addresses=127.0.0.1",
		"-c unix_socket_directories=''",
		"-c wal_level=logical",
		"-c max_wal_senders=10",
		"-c max_replication_slots=10",
	}
	for _, s := range c.Config {
		opts = append(opts, "-c "+s)
	}
	logPath := filepath.Join(c.Dir, "server.log")
	if _, err := c.run(ctx, "pg_ctl", "-D", c.Dir, "-l", logPath, "-w", "-t", "60",
		"-o", strings.Join(opts, " "), "start"); err != nil {
		// pg_ctl says only "could not start server": what went wrong is at the log's end.
		tail := logTail(logPath)
		if strings.Contains(tail, "Address already in use") {
			err = fmt.Errorf("%w: port %d: %w", ErrPortInUse, c.Port, err)
		}
		return fmt.Errorf("start PostgreSQL in %s: %w\n%s (the end of %s)", c.Dir, err, tail, logPath)
	}
	return nil
}

// ErrPortInUse: the server could not listen on its port, which another process holds.
var ErrPortInUse = errors.New("the port is in use")

// logTail is the last lines of the server log at path, or a note that it cannot be read.
func logTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(no server log: %v)", err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-8):], "\n")
}

// Running reports whether a server is running on Dir.
func (c *Cluster) Running(ctx context.Context) bool {
	if c.resolveBin() != nil {
		return false
	}
	_, err := c.run(ctx, "pg_ctl", "-D", c.Dir, "status")
	return err == nil
}

// ServingPort is the port the server running on Dir listens on, read from its postmaster.pid,
// which can differ from Port: the cluster was started earlier with another.
func (c *Cluster) ServingPort() (int, error) {
	b, err := os.ReadFile(filepath.Join(c.Dir, "postmaster.pid"))
	if err != nil {
		return 0, fmt.Errorf("read the running server's port: %w", err)
	}
	// Line 4 is the port (PostgreSQL's LOCK_FILE_LINE_PORT).
	lines := strings.Split(string(b), "\n")
	if len(lines) < 4 {
		return 0, fmt.Errorf("read the running server's port: %s has %d lines, want at least 4", filepath.Join(c.Dir, "postmaster.pid"), len(lines))
	}
	port, err := strconv.Atoi(strings.TrimSpace(lines[3]))
	if err != nil {
		return 0, fmt.Errorf("read the running server's port from postmaster.pid: %w", err)
	}
	return port, nil
}

// Stop stops the server (fast shutdown: open transactions roll back).
func (c *Cluster) Stop(ctx context.Context) error {
	if err := c.resolveBin(); err != nil {
		return err
	}
	if _, err := c.run(ctx, "pg_ctl", "-D", c.Dir, "-m", "fast", "-w", "stop"); err != nil {
		return fmt.Errorf("stop PostgreSQL in %s: %w", c.Dir, err)
	}
	return nil
}

// URL is a connection string for database db as the superuser.
func (c *Cluster) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.Port, db)
}

func (c *Cluster) resolveBin() error {
	if c.BinDir != "" {
		return nil
	}
	d, err := FindBinDir()
	if err != nil {
		return err
	}
	c.BinDir = d
	return nil
}

// run executes a server binary, as the postgres user when we are root.
func (c *Cluster) run(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(c.BinDir, name), args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Dir = os.TempDir()
	cmd.WaitDelay = 5 * time.Second
	if cred, err := serverCredential(); err != nil {
		return "", err
	} else if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s: %w: %s", name, err, strings.TrimSpace(out.String()))
	}
	return out.String(), nil
}

// serverCredential is nil unless we are root, when it is the postgres system user.
func serverCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root needs a `postgres` system user to run the server: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// handOver gives dir to the server user and makes every directory above it traversable (o+x,
// not listable) so the server can reach it.
func (c *Cluster) handOver(dir string) error {
	cred, err := serverCredential()
	if err != nil || cred == nil {
		return err
	}
	if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
		return fmt.Errorf("hand %s to the postgres user: %w", dir, err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("resolve %s: %w", dir, err)
	}
	for d := filepath.Dir(abs); d != filepath.Dir(d); d = filepath.Dir(d) {
		st, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("check %s: %w", d, err)
		}
		if perm := st.Mode().Perm(); perm&0o001 == 0 {
			if err := os.Chmod(d, perm|0o001); err != nil {
				return fmt.Errorf("make %s traversable for the postgres user: %w", d, err)
			}
		}
	}
	return nil
}
