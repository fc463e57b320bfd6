package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keapsync/keapsync/sidecar/devtools/pgtest"
	"github.com/keapsync/keapsync/sidecar/keapauth"
	"github.com/keapsync/keapsync/sidecar/pgcluster"
	"github.com/keapsync/keapsync/sidecar/sandbox"
)

// world is everything one soak runs against: a private Postgres cluster (so it can be
// restarted), the sandbox in-process, two serve subprocesses and the proxy in front of them.
type world struct {
	cfg      Config
	log      *slog.Logger
	dir      string
	cluster  *pgcluster.Cluster
	stopPG   func()
	dbURL    string
	sb       *sandbox.Server
	bin      string
	key      string   // the sealing key every command takes
	oauth    []string // the OAuth flags every command takes (straight to the sandbox)
	keapArgs []string // oauth plus --api-url (straight to the sandbox)
	taps     map[string]*tap
	pool     *pgxpool.Pool
	account  string
	proxyURL string
	proxySrv *http.Server
	serves   []*serveProc
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	rnd      *rand.Rand // setup choices (the backfill kill); actors and faults have their own
	jumps    keapJumps  // where the sandbox's clock was moved ahead (advanceKeap)
}

func newWorld(ctx context.Context, cfg Config) (w *world, err error) {
	w = &world{cfg: cfg, log: cfg.Log, rnd: rand.New(rand.NewPCG(uint64(cfg.Seed), 1)), taps: map[string]*tap{}}
	defer func() {
		if err != nil {
			w.close()
		}
	}()
	if w.dir, err = os.MkdirTemp("", "keapsync-chaos-"); err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	built := make(chan error, 1)
	go func() { built <- w.build(ctx) }()
	if w.cluster, w.stopPG, err = pgtest.StartCluster(ctx); err != nil {
		return nil, fmt.Errorf("start Postgres: %w", err)
	}
	if err := w.createDB(ctx); err != nil {
		return nil, err
	}
	profile := sandbox.Profile{}
	if cfg.Profile != "" {
		if profile, err = sandbox.ParseProfile(cfg.Profile); err != nil {
			return nil, err
		}
	}
	w.sb, err = sandbox.New(sandbox.Options{
		Seed: cfg.Seed, Contacts: cfg.Contacts, AutoApprove: true, Profile: profile,
		// The 429s come from the storm fault, on a schedule; Keap's real budgets would add
		// throttling whose timing depends on the machine, which a seed cannot replay.
		Unthrottled: true,
		HookDelay:   200 * time.Millisecond,
		// Long enough that a serve outage or a Postgres restart does not exhaust the four
		// attempts and make a hook Inactive; still short enough to retry within the soak.
		RetryBackoff:    sandbox.ScaledBackoff(0.02),
		DeliveryTimeout: 5 * time.Second,
		RequestLogSize:  1 << 21,
	})
	if err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	if err := w.sb.Start(ctx); err != nil {
		return nil, fmt.Errorf("start sandbox: %w", err)
	}
	if err := <-built; err != nil {
		return nil, err
	}
	w.key = keapauth.NewKey()
	// Secrets go to the commands in files, never on their command lines (visible in ps).
	for name, secret := range map[string]string{"client-secret": w.sb.Credentials().ClientSecret, "secret-key": w.key} {
		if err := os.WriteFile(filepath.Join(w.dir, name), []byte(secret), 0o600); err != nil {
			return nil, fmt.Errorf("write the %s file: %w", name, err)
		}
	}
	w.oauth = w.oauthVia(w.sb.URL())
	w.keapArgs = w.keapVia(w.sb.URL())
	if out, err := w.cli(ctx, "migrate", "--database-url", w.dbURL); err != nil {
		return nil, fmt.Errorf("migrate: %w\n%s", err, out)
	}
	if out, err := w.cli(ctx, append([]string{"auth", "login", "--follow"}, w.oauth...)...); err != nil {
		return nil, fmt.Errorf("auth login: %w\n%s", err, out)
	}
	if w.pool, err = pgxpool.New(ctx, w.dbURL); err != nil {
		return nil, fmt.Errorf("pool: %w", err)
	}
	if err := w.pool.QueryRow(ctx, `select id::text from keapsync.accounts`).Scan(&w.account); err != nil {
		return nil, fmt.Errorf("find the account: %w", err)
	}
	// Local deletes reach Keap only when the account says so; the soak wants both directions.
	if _, err := w.pool.Exec(ctx, `insert into keapsync.settings (account_id, propagate_deletes) values ($1, true)
		on conflict (account_id) do update set propagate_deletes = true`, w.account); err != nil {
		return nil, fmt.Errorf("enable delete propagation: %w", err)
	}
	return w, w.startServes(ctx)
}

// oauthVia is the OAuth flags with the token endpoint at base: the sandbox, or a tap before it.
func (w *world) oauthVia(base string) []string {
	creds := w.sb.Credentials()
	return []string{"--database-url", w.dbURL, "--client-id", creds.ClientID,
		"--client-secret-file", filepath.Join(w.dir, "client-secret"),
		"--auth-url", w.sb.URL() + "/app/oauth/authorize", "--token-url", base + "/token",
		"--secret-key-file", filepath.Join(w.dir, "secret-key")}
}

// keapVia is oauthVia plus the API at base.
func (w *world) keapVia(base string) []string {
	return append(w.oauthVia(base), "--api-url", base+"/crm/rest")
}

// build compiles the real binary, so SIGKILL hits a real process.
func (w *world) build(ctx context.Context) error {
	if w.cfg.Bin != "" {
		w.bin = w.cfg.Bin
		return nil
	}
	w.bin = filepath.Join(w.dir, "keapsync")
	return buildKeapsync(ctx, w.bin)
}

// buildKeapsync compiles the keapsync command to bin.
func buildKeapsync(ctx context.Context, bin string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/keapsync/keapsync/sidecar/cmd/keapsync")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build keapsync: %w\n%s", err, out)
	}
	return nil
}

func (w *world) createDB(ctx context.Context) error {
	admin, err := pgx.Connect(ctx, w.cluster.URL("postgres"))
	if err != nil {
		return fmt.Errorf("connect to the cluster: %w", err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "create database chaos"); err != nil {
		return fmt.Errorf("create database: %w", err)
	}
	w.dbURL = w.cluster.URL("chaos")
	return nil
}

// cli runs one keapsync command to completion (bounded) and returns its combined output.
func (w *world) cli(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, w.bin, append([]string{"--log-level", "warn"}, args...)...)
	cmd.SysProcAttr = dieWithUs()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("keapsync %s: %w", args[0], err)
	}
	return out.String(), err
}

// startServes starts the proxy and two supervised serve processes, and waits until both answer.
func (w *world) startServes(ctx context.Context) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("proxy listen: %w", err)
	}
	w.proxyURL = "http://" + ln.Addr().String()
	sctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	for _, name := range []string{"A", "B"} {
		port, err := pgcluster.FreePort()
		if err != nil {
			return err
		}
		out, err := os.OpenFile(filepath.Join(w.dir, "serve-"+name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return fmt.Errorf("serve log: %w", err)
		}
		addr := "127.0.0.1:" + strconv.Itoa(port)
		t, err := startTap(name, w.sb.URL())
		if err != nil {
			return err
		}
		w.taps[name] = t
		args := append([]string{"--log-level", "warn", "serve", "--listen", addr, "--public-url", w.proxyURL,
			"--coalesce", "200ms", "--reconcile-every", "0s"}, w.keapVia(t.url)...)
		if w.cfg.PoolMaxConns > 0 {
			// Later flags win: the same database, a bigger pool.
			args = append(args, "--database-url", w.dbURL+"&pool_max_conns="+strconv.Itoa(w.cfg.PoolMaxConns))
		}
		w.serves = append(w.serves, &serveProc{name: name, bin: w.bin, args: args, addr: addr, out: out,
			log: w.log})
	}
	w.proxySrv = &http.Server{Handler: newProxy(w.serves), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = w.proxySrv.Serve(ln) }()
	for _, s := range w.serves {
		w.wg.Add(1)
		go s.supervise(sctx, &w.wg)
		// One at a time, so A holds the replication slot and B starts as the standby.
		if err := s.waitUp(ctx, time.Minute); err != nil {
			return err
		}
	}
	return nil
}

// prepare subscribes the hooks at the proxy and backfills: the first backfill is SIGKILLed
// while one of its Keap reads is held (tags are read first, so at least one object type is
// checkpointed and the rest is not), then run again to the end. It waits until the backfill's
// effects have settled and returns what happened, for the report.
func (w *world) prepare(ctx context.Context) (string, error) {
	out, err := w.cli(ctx, append([]string{"hooks", "ensure", "--public-url", w.proxyURL}, w.keapArgs...)...)
	if err != nil || !strings.Contains(out, "verified") {
		return "", fmt.Errorf("hooks ensure: %v\n%s", err, out)
	}
	t, err := startTap("backfill", w.sb.URL())
	if err != nil {
		return "", err
	}
	w.taps[t.name] = t
	tr := newTrap(callRead, []string{"/v1/contacts", "/v1/orders", "/v2/subscriptions"}[w.rnd.IntN(3)], false)
	t.arm(tr)
	defer t.disarm(tr)
	cmd := exec.Command(w.bin, append([]string{"--log-level", "error", "backfill"}, w.keapVia(t.url)...)...)
	cmd.SysProcAttr = dieWithUs()
	var first bytes.Buffer
	cmd.Stdout, cmd.Stderr = &first, &first
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("start backfill: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		_ = cmd.Process.Kill()
		<-exited
	}
	var note string
	select {
	case h := <-tr.held:
		stop()
		tr.done(true)
		note = fmt.Sprintf("setup: backfill SIGKILLed mid-backfill, its %s held before Keap saw it; checkpoints then: %s",
			h.call, w.backfillCursors(ctx))
	case err := <-exited:
		tr.done(false)
		return "", fmt.Errorf("the backfill ended (%v) before it read %s, so no kill could land in it:\n%s", err, tr.path, first.String())
	case <-time.After(time.Minute):
		stop()
		tr.done(true)
		return "", fmt.Errorf("the backfill did not read %s within a minute:\n%s", tr.path, first.String())
	case <-ctx.Done():
		stop()
		tr.done(true)
		return "", ctx.Err()
	}
	if out, err := w.cli(ctx, append([]string{"backfill"}, w.keapVia(t.url)...)...); err != nil || !strings.Contains(out, ": done") {
		return note, fmt.Errorf("backfill after SIGKILL: %v\n%s", err, out)
	}
	note += "; resumed to the end: " + w.backfillCursors(ctx)
	return note, w.quiesce(ctx, time.Minute)
}

// sqlBackfillCursors sums up the backfill checkpoints: rows applied per object type, and
// whether it finished.
const sqlBackfillCursors = `
select coalesce(string_agg(format('%s %s rows%s', object_type, rows_done,
                                  case when finished_at is null then ' (unfinished)' else ' done' end),
                           ', ' order by started_at, object_type), 'none')
  from keapsync.sync_cursors where account_id = $1 and kind = 'backfill'`

func (w *world) backfillCursors(ctx context.Context) string {
	var s string
	if err := w.pool.QueryRow(ctx, sqlBackfillCursors, w.account).Scan(&s); err != nil {
		return "unknown (" + err.Error() + ")"
	}
	return s
}

// sqlBacklog is the work not yet done: hook deliveries in the inbox, records in the push queue.
const sqlBacklog = `
select (select count(*) from keapsync.webhook_inbox where processed_at is null),
       (select count(*) from keapsync.push_queue)`

// backlog describes the work queued in Postgres, asked briefly (Postgres may be restarting).
func (w *world) backlog(ctx context.Context) string {
	qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var inbox, queue int
	if err := w.pool.QueryRow(qctx, sqlBacklog).Scan(&inbox, &queue); err != nil {
		return "push queue unknown (" + err.Error() + ")"
	}
	return fmt.Sprintf("push queue %d, inbox %d", queue, inbox)
}

// waitBacklog waits until at least n records wait in the push queue, or ctx ends.
func (w *world) waitBacklog(ctx context.Context, n int) {
	for ctx.Err() == nil {
		var inbox, queue int
		if w.pool.QueryRow(ctx, sqlBacklog).Scan(&inbox, &queue) == nil && queue >= n {
			return
		}
		sleepCtx(ctx, 100*time.Millisecond)
	}
}

// kill SIGKILLs serve i (kept down for at least hold) and says where the kill landed: what
// that serve had in flight at Keap, and the backlog in Postgres.
func (w *world) kill(ctx context.Context, i int, hold time.Duration) (where, note string) {
	flight := w.taps[serveName(i)].inFlight()
	if !w.serves[i].kill(hold) {
		return "", fmt.Sprintf("(was down already; kept down ≥%s)", hold)
	}
	switch {
	case flight[callRefresh] > 0:
		where = "mid-refresh"
	case flight[callWrite] > 0:
		where = "mid-push"
	case flight[callRead] > 0:
		where = "mid-read"
	default:
		where = "idle"
	}
	return where, fmt.Sprintf("landed %s: %s; %s", where, describeFlight(flight), w.backlog(ctx))
}

// close stops everything this soak started: the serve processes (by their own pids, through
// the supervisors), the proxy, the sandbox and the cluster. The temp dir stays when keep is set.
func (w *world) close() {
	if w.cancel != nil {
		w.cancel()
		w.wg.Wait()
	}
	if w.proxySrv != nil {
		_ = w.proxySrv.Close()
	}
	for _, t := range w.taps {
		t.close()
	}
	for _, s := range w.serves {
		_ = s.out.Close()
	}
	if w.pool != nil {
		w.pool.Close()
	}
	if w.sb != nil {
		_ = w.sb.Close()
	}
	if w.stopPG != nil {
		w.stopPG()
	}
}
