package pgcluster_test

import (
	"context"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/keapsync/keapsync/sidecar/pgcluster"
)

// postgresUser is the uid and gid of the `postgres` system user, skipping the test unless this
// process is root and the user exists.
func postgresUser(t *testing.T) (uid, gid int) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		t.Skip("no postgres system user")
	}
	uid, _ = strconv.Atoi(u.Uid)
	gid, _ = strconv.Atoi(u.Gid)
	return uid, gid
}

// A developer who is not root runs the server as themselves: the data directory stays theirs,
// the directories above it are left as they are (root would add o+x to each), and the server's
// process is theirs. The test, run as root, becomes the postgres user for its length (it is not
// parallel, so nothing else in the package runs meanwhile) and keeps root as its saved user id
// to come back.
func TestClusterAsAnOrdinaryUser(t *testing.T) {
	uid, gid := postgresUser(t)
	ctx := context.Background()
	top, err := os.MkdirTemp("", "keapsync-pgcluster-user-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(top) })
	if err := os.Chown(top, uid, gid); err != nil { // 0700: only the user may enter
		t.Fatal(err)
	}
	port, err := pgcluster.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	c := &pgcluster.Cluster{Dir: filepath.Join(top, "data"), Port: port, Config: []string{"fsync=off"}}
	if _, err := pgcluster.FindBinDir(); err != nil {
		t.Skip(err)
	}

	if err := syscall.Setresgid(gid, gid, 0); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Setresuid(uid, uid, 0); err != nil {
		syscall.Setresgid(0, 0, 0)
		t.Fatal(err)
	}
	asRoot := func() {
		if err := syscall.Setresuid(0, 0, 0); err != nil {
			panic(err) // the rest of the package must not run as another user
		}
		if err := syscall.Setresgid(0, 0, 0); err != nil {
			panic(err)
		}
	}
	defer asRoot()

	if err := c.Init(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer c.Stop(context.Background())
	pidFile, err := os.ReadFile(filepath.Join(c.Dir, "postmaster.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.SplitN(string(pidFile), "\n", 2)[0])
	if owner := ownerOf(t, filepath.Join("/proc", strconv.Itoa(pid))); owner != uid {
		t.Errorf("the server runs as uid %d, want the user who started it (%d)", owner, uid)
	}
	if err := c.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	asRoot()

	if owner := ownerOf(t, c.Dir); owner != uid {
		t.Errorf("data directory owned by uid %d, want %d", owner, uid)
	}
	if st, err := os.Stat(top); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("the directory above the data directory: %v, %v; want it left at 0700", st.Mode(), err)
	}
}

func ownerOf(t *testing.T, path string) int {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return int(st.Sys().(*syscall.Stat_t).Uid)
}

// immutable marks path immutable (chattr +i: not even root may change it) until the test ends,
// skipping the test where the file system or the capabilities do not allow it.
func immutable(t *testing.T, path string) {
	t.Helper()
	if out, err := exec.Command("chattr", "+i", path).CombinedOutput(); err != nil {
		t.Skipf("chattr +i %s: %v: %s", path, err, out)
	}
	t.Cleanup(func() { exec.Command("chattr", "-i", path).Run() })
}

// As root, Init hands the data directory to the postgres user and opens the directories above it
// to that user; when either cannot be done it stops there, naming the directory (initdb, here an empty file,
// would fail otherwise).
func TestInitSaysWhichDirectoryItCannotHandOver(t *testing.T) {
	postgresUser(t)
	if _, err := exec.LookPath("chattr"); err != nil {
		t.Skip("no chattr")
	}
	ctx := context.Background()

	locked := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(locked, 0o700); err != nil {
		t.Fatal(err)
	}
	immutable(t, locked)
	c := &pgcluster.Cluster{Dir: locked, BinDir: fakeServerDir(t)}
	if err := c.Init(ctx); err == nil || !strings.Contains(err.Error(), "hand "+locked+" to the postgres user") {
		t.Errorf("Init of a data directory root cannot hand over: %v", err)
	}

	closed := filepath.Join(t.TempDir(), "closed")
	data := filepath.Join(closed, "data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(closed, 0o700); err != nil {
		t.Fatal(err)
	}
	immutable(t, closed)
	c = &pgcluster.Cluster{Dir: data, BinDir: fakeServerDir(t)}
	if err := c.Init(ctx); err == nil || !strings.Contains(err.Error(), "make "+closed+" traversable for the postgres user") {
		t.Errorf("Init under a directory root cannot open: %v", err)
	}
}
