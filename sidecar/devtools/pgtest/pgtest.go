// Package pgtest gives tests a real PostgreSQL: one throwaway cluster per test run
// (wal_level=logical, free port, temp dir), a migrated template database per cluster (shared by
// the packages of a run), and a fresh clone of it per test. Never a mock.
//
// `make test` starts the cluster once (see withpg) and passes its address in
// KEAPSYNC_TEST_DATABASE_URL; a plain `go test` starts a private cluster for the package.
package pgtest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keapsync/keapsync/sidecar/migrate"
	"github.com/keapsync/keapsync/sidecar/pgcluster"
)

// EnvURL names the variable that carries an already running test cluster's admin URL.
const EnvURL = "KEAPSYNC_TEST_DATABASE_URL"

// testConfig trades durability for speed: a test cluster never survives a crash anyway. Not
// synchronous_commit=off: logical decoding reads only flushed WAL, and tests read it at once.
var testConfig = []string{"fsync=off", "full_page_writes=off", "max_connections=200"}

// EnvClusterDir names the variable that chooses where test clusters keep their data (default:
// /dev/shm when it is a tmpfs with room, else the temp dir).
const EnvClusterDir = "KEAPSYNC_TEST_CLUSTER_DIR"

// clusterParent is where a test cluster's data directory goes. Every test clones the template
// database, some 560 files, and drops it after: on ext4, creating files among that many freshly
// deleted inodes (find_inode_bit, recently_deleted) took 11-15 % of all CPU in perf profiles of
// the ingest package's run, and tmpfs has no such cost. A test cluster never outlives its run, so
// memory is the right place for it where there is room.
func clusterParent() string {
	if dir := os.Getenv(EnvClusterDir); dir != "" {
		return dir
	}
	var st syscall.Statfs_t
	const tmpfsMagic = 0x01021994
	if err := syscall.Statfs("/dev/shm", &st); err == nil && st.Type == tmpfsMagic &&
		st.Bavail*uint64(st.Bsize) >= 2<<30 && syscall.Access("/dev/shm", 2 /* W_OK */) == nil {
		return "/dev/shm"
	}
	return "" // os.TempDir
}

// StartCluster starts a throwaway cluster in a new temp dir; stop it with the returned function.
func StartCluster(ctx context.Context) (*pgcluster.Cluster, func(), error) {
	dir, err := os.MkdirTemp(clusterParent(), "keapsync-pg-")
	if err != nil {
		return nil, nil, fmt.Errorf("create cluster dir: %w", err)
	}
	port, err := pgcluster.FreePort()
	if err != nil {
		return nil, nil, err
	}
	c := &pgcluster.Cluster{Dir: filepath.Join(dir, "data"), Port: port, Config: testConfig}
	cleanup := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = c.Stop(ctx)
		_ = os.RemoveAll(dir)
	}
	if err := c.Init(ctx); err != nil {
		_ = os.RemoveAll(dir)
		return nil, nil, err
	}
	// Another process (another package's tests) may take the port before the server binds it.
	for attempt := 1; ; attempt++ {
		err := c.Start(ctx)
		if err == nil {
			break
		}
		if !errors.Is(err, pgcluster.ErrPortInUse) || attempt == 3 {
			_ = os.RemoveAll(dir)
			return nil, nil, err
		}
		if c.Port, err = pgcluster.FreePort(); err != nil {
			_ = os.RemoveAll(dir)
			return nil, nil, err
		}
	}
	watchdog(dir, c.Dir)
	return c, cleanup, nil
}

// watchdog stops the cluster and removes dir if this process dies without cleaning up (a test
// binary killed by its timeout, or by a person): pg_ctl daemonizes the server, so nothing else
// would. It signals the postmaster directly (SIGQUIT: immediate shutdown), which root may do
// where pg_ctl refuses to run.
func watchdog(dir, dataDir string) {
	script := fmt.Sprintf(`while kill -0 %d 2>/dev/null; do sleep 1; done
pid=$(head -n 1 %q/postmaster.pid 2>/dev/null) && kill -QUIT "$pid" 2>/dev/null
sleep 2; rm -rf %q`, os.Getpid(), dataDir, dir)
	cmd := exec.Command("sh", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // outlives us, by design
	if err := cmd.Start(); err == nil {
		go cmd.Wait() // reap it if we outlive it after all
	}
}

var (
	adminURL      string // the cluster's `postgres` database
	cloneStrategy string // " strategy file_copy" where the server has the clause (15+)
	template      string // the cluster's migrated template database, named by the migrations
	counter       atomic.Int64
)

// Main runs a package's tests against the shared cluster (or a private one) with a migrated
// template database. Call it from TestMain: `func TestMain(m *testing.M) { pgtest.Main(m) }`.
func Main(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx := context.Background()
	adminURL = os.Getenv(EnvURL)
	if adminURL == "" {
		c, stop, err := StartCluster(ctx)
		if err != nil {
			log.Printf("pgtest: cannot start PostgreSQL for the tests: %v", err)
			return 1
		}
		defer stop()
		adminURL = c.URL("postgres")
	}
	var err error
	if template, err = ensureTemplate(ctx); err != nil {
		log.Printf("pgtest: %v", err)
		return 1
	}
	defer func() {
		if adminConns != nil {
			adminConns.Close()
		}
	}()
	return m.Run()
}

// ensureTemplate returns the cluster's migrated template database, making it if this package
// is the first to ask. It is named by a digest of the embedded migrations, so the packages of
// one `make test` migrate once between them instead of once each, and a changed migration gets
// a template of its own. It is never dropped: it dies with the throwaway cluster. Roles are
// cluster-wide, so packages bootstrap one at a time under an advisory lock; a template is built
// under another name and renamed when complete, so a package killed mid-migration leaves no
// half-migrated template behind.
func ensureTemplate(ctx context.Context) (string, error) {
	mig, err := migrate.Embedded(nil)
	if err != nil {
		return "", err
	}
	name := templateName(mig)
	admin, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return "", fmt.Errorf("connect to test cluster: %w", err)
	}
	defer admin.Close(ctx) // ends the session, and so the advisory lock
	var version int
	if err := admin.QueryRow(ctx, "select current_setting('server_version_num')::int").Scan(&version); err != nil {
		return "", fmt.Errorf("read the test cluster's version: %w", err)
	}
	if version >= 150000 {
		cloneStrategy = " strategy file_copy"
	}
	// Looked for before the lock as well as under it: the lock is also the one LockRoles holds,
	// and a package whose template was there already waited out another package's test of the
	// Supabase CLI (a minute and more), holding one of go test's -p slots all that time.
	exists := func() (bool, error) {
		var found bool
		err := admin.QueryRow(ctx, `select exists (select 1 from pg_database where datname = $1)`, name).Scan(&found)
		if err != nil {
			return false, fmt.Errorf("look for template database %s: %w", name, err)
		}
		return found, nil
	}
	if found, err := exists(); err != nil || found {
		return name, err
	}
	if _, err := admin.Exec(ctx, "select pg_advisory_lock(4242)"); err != nil {
		return "", fmt.Errorf("lock test cluster: %w", err)
	}
	if found, err := exists(); err != nil || found {
		return name, err
	}
	building := name + "_building"
	if _, err := admin.Exec(ctx, "drop database if exists "+pgx.Identifier{building}.Sanitize()+" with (force)"); err != nil {
		return "", fmt.Errorf("drop unfinished template database: %w", err)
	}
	if _, err := admin.Exec(ctx, "create database "+pgx.Identifier{building}.Sanitize()); err != nil {
		return "", fmt.Errorf("create template database: %w", err)
	}
	if err := migrateDatabase(ctx, mig, withDatabase(adminURL, building)); err != nil {
		return "", err
	}
	if _, err := admin.Exec(ctx, "alter database "+pgx.Identifier{building}.Sanitize()+" rename to "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", fmt.Errorf("name template database: %w", err)
	}
	return name, nil
}

// templateName digests everything the migrator would run.
func templateName(mig *migrate.Migrator) string {
	h := sha256.New()
	fmt.Fprintf(h, "%q", mig.Bootstrap)
	for _, m := range mig.Migrations {
		fmt.Fprintf(h, "\x00%q\x00%q", m.File, m.SQL)
	}
	return fmt.Sprintf("tmpl_%x", h.Sum(nil)[:8])
}

// migrateDatabase applies the migrations to the database at url and closes its connection
// (a template with a session open could be neither renamed nor cloned).
func migrateDatabase(ctx context.Context, mig *migrate.Migrator, url string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return fmt.Errorf("connect to template database: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := mig.Apply(ctx, conn); err != nil {
		return fmt.Errorf("migrate template database: %w", err)
	}
	return nil
}

// URL creates a fresh, migrated database for the test and returns its URL; it is dropped when
// the test ends.
func URL(t testing.TB) string {
	t.Helper()
	return cloneOf(t, template)
}

func cloneOf(t testing.TB, source string) string {
	t.Helper()
	if template == "" {
		t.Fatal("pgtest: call pgtest.Main from TestMain")
	}
	ctx := context.Background()
	// The pid tells apart the clones of packages running at once: they share the template.
	name := fmt.Sprintf("%s_%d_%d", template, os.Getpid(), counter.Add(1))
	if err := adminExec(ctx, cloneSQL(name, source)); err != nil {
		t.Fatalf("pgtest: create database from %s: %v", source, err)
	}
	t.Cleanup(func() { dropDatabase(context.Background(), name) })
	return withDatabase(adminURL, name)
}

// cloneSQL creates database name as a copy of source. FILE_COPY (PostgreSQL 15 made WAL_LOG the
// default) copies the files instead of writing the whole template into the WAL: a clone wrote
// 6 MB of WAL, which every logical decoder of the cluster then read through, and the suite
// spent a tenth of its CPU on it.
func cloneSQL(name, source string) string {
	return fmt.Sprintf("create database %s template %s%s",
		pgx.Identifier{name}.Sanitize(), pgx.Identifier{source}.Sanitize(), cloneStrategy)
}

// seeded are the seeded templates of this package run, by name.
var (
	seededMu sync.Mutex
	seeded   = map[string]*seededTemplate{}
)

type seededTemplate struct {
	once sync.Once
	db   string // the template's name, once seeded
	err  error
}

// Seeded creates a fresh database holding the migrations and what seed put there, and returns
// its URL; it is dropped when the test ends. seed runs once per package run for each name, on a
// database then kept as a template (it dies with the throwaway cluster): loading a fixture such
// as the demo seed's 1,200 contacts takes seconds, cloning it milliseconds. seed must close every
// connection it opens, as a database with a session open cannot be cloned.
func Seeded(t testing.TB, name string, seed func(ctx context.Context, url string) error) string {
	t.Helper()
	if template == "" {
		t.Fatal("pgtest: call pgtest.Main from TestMain")
	}
	seededMu.Lock()
	s, ok := seeded[name]
	if !ok {
		s = &seededTemplate{}
		seeded[name] = s
	}
	seededMu.Unlock()
	s.once.Do(func() {
		// The pid tells apart the templates of packages running at once.
		db := fmt.Sprintf("%s_%d_seed_%d", template, os.Getpid(), counter.Add(1))
		ctx := context.Background()
		if s.err = adminExec(ctx, cloneSQL(db, template)); s.err != nil {
			s.err = fmt.Errorf("create the database for seed %q: %w", name, s.err)
			return
		}
		if s.err = seed(ctx, withDatabase(adminURL, db)); s.err != nil {
			s.err = fmt.Errorf("seed %q: %w", name, s.err)
			return
		}
		s.db = db
	})
	if s.err != nil {
		t.Fatalf("pgtest: %v", s.err)
	}
	return cloneOf(t, s.db)
}

// adminExec runs sql on the cluster's postgres database.
func adminExec(ctx context.Context, sql string, args ...any) error {
	admin, err := adminPool()
	if err != nil {
		return err
	}
	_, err = admin.Exec(ctx, sql, args...)
	return err
}

var (
	adminOnce  sync.Once
	adminConns *pgxpool.Pool
	adminErr   error
)

// adminPool is the package run's connections to the cluster's postgres database, for creating
// and dropping the tests' databases: a connection each time was two backends started per test.
func adminPool() (*pgxpool.Pool, error) {
	adminOnce.Do(func() {
		if adminConns, adminErr = pgxpool.New(context.Background(), adminURL); adminErr != nil {
			adminErr = fmt.Errorf("connect to test cluster: %w", adminErr)
		}
	})
	return adminConns, adminErr
}

// Pool is URL plus a connection pool closed when the test ends.
func Pool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), URL(t))
	if err != nil {
		t.Fatalf("pgtest: pool: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func dropDatabase(ctx context.Context, name string) {
	// A logical replication slot (the push path's) keeps its database from being dropped.
	_ = adminExec(ctx, `select pg_drop_replication_slot(slot_name) from pg_replication_slots
	                     where database = $1 and not active`, name)
	_ = adminExec(ctx, "drop database if exists "+pgx.Identifier{name}.Sanitize()+" with (force)")
}

// withDatabase swaps the database name in a postgres:// URL.
func withDatabase(url, db string) string {
	base, query, _ := strings.Cut(url, "?")
	i := strings.LastIndex(base, "/")
	out := base[:i+1] + db
	if query != "" {
		out += "?" + query
	}
	return out
}

// EmptyURL creates an empty database (no bootstrap, no migrations), dropped when the test ends.
func EmptyURL(t testing.TB) string {
	t.Helper()
	return cloneOf(t, "template0")
}

// roleLocks are the tests that hold the roles lock (LockRoles), so a second call does not wait on
// the first.
var roleLocks sync.Map

// LockRoles holds, until t ends or the returned release is called, the lock packages take to
// bootstrap their templates. Roles are cluster-wide: a test that migrates from scratch (grants to
// keapsync's roles) or uninstalls (revokes them) while another database of the cluster does the
// same fails with "tuple concurrently updated", so such steps take turns. A test may call it more
// than once; the lock is taken once.
func LockRoles(t testing.TB) (release func()) {
	t.Helper()
	if _, held := roleLocks.LoadOrStore(t, true); held {
		return func() {}
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		roleLocks.Delete(t)
		t.Fatalf("connect to test cluster: %v", err)
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			conn.Close(context.Background()) // ends the session, and so its advisory lock
			roleLocks.Delete(t)
		})
	}
	t.Cleanup(release)
	if _, err := conn.Exec(ctx, "select pg_advisory_lock(4242)"); err != nil {
		t.Fatalf("lock test cluster: %v", err)
	}
	return release
}

// PrivatePool is a migrated database on a cluster of its own, stopped when t ends. For the few
// tests that measure the disk: on the shared cluster, other packages' open transactions hold back
// the horizon below which VACUUM may recycle index pages, so sizes would depend on what else runs.
func PrivatePool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	ctx := context.Background()
	c, stop, err := StartCluster(ctx)
	if err != nil {
		t.Fatalf("start a private cluster: %v", err)
	}
	t.Cleanup(stop)
	mig, err := migrate.Embedded(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := migrateDatabase(ctx, mig, c.URL("postgres")); err != nil {
		t.Fatalf("the private cluster: %v", err)
	}
	pool, err := pgxpool.New(ctx, c.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}
