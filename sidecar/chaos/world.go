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

	"github.com/keapsync/keapsync/sidecar/keapauth"
	"github.com/keapsync/keapsync/sidecar/pgcluster"
	"github.com/keapsync/keapsync/sidecar/pgtest"
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
	oauth    []string // the OAuth flags every command takes
	keapArgs []string // oauth plus --api-url
	pool     *pgxpool.Pool
	account  string
	proxyURL string
	proxySrv *http.Server
	serves   []*serveProc
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	rnd      *rand.Rand // setup choices (the backfill kill); actors and faults have their own
}

func newWorld(ctx context.Context, cfg Config) (w *world, err error) {
	w = &world{cfg: cfg, log: cfg.Log, rnd: rand.New(rand.NewPCG(uint64(cfg.Seed), 1))}
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
	w.sb, err = sandbox.New(sandbox.Options{
		Seed: cfg.Seed, Contacts: cfg.Contacts, AutoApprove: true,
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
	key, err := keapauth.NewKey()
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	creds := w.sb.Credentials()
	w.oauth = []string{"--database-url", w.dbURL, "--client-id", creds.ClientID, "--client-secret", creds.ClientSecret,
		"--auth-url", w.sb.URL() + "/app/oauth/authorize", "--token-url", w.sb.URL() + "/token", "--secret-key", key}
	w.keapArgs = append(append([]string{}, w.oauth...), "--api-url", w.sb.URL()+"/crm/rest")
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

// build compiles the real binary, so SIGKILL hits a real process.
func (w *world) build(ctx context.Context) error {
	if w.cfg.Bin != "" {
		w.bin = w.cfg.Bin
		return nil
	}
	w.bin = filepath.Join(w.dir, "keapsync")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", w.bin, "github.com/keapsync/keapsync/sidecar/cmd/keapsync")
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
		args := append([]string{"--log-level", "warn", "serve", "--listen", addr, "--public-url", w.proxyURL,
			"--coalesce", "200ms", "--reconcile-every", "0s"}, w.keapArgs...)
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

// prepare subscribes the hooks at the proxy and backfills, killing the first backfill partway
// (resumability under SIGKILL), then waits until the backfill's effects have settled.
func (w *world) prepare(ctx context.Context) error {
	out, err := w.cli(ctx, append([]string{"hooks", "ensure", "--public-url", w.proxyURL}, w.keapArgs...)...)
	if err != nil || !strings.Contains(out, "verified") {
		return fmt.Errorf("hooks ensure: %v\n%s", err, out)
	}
	cmd := exec.Command(w.bin, append([]string{"--log-level", "error", "backfill"}, w.keapArgs...)...)
	cmd.SysProcAttr = dieWithUs()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start backfill: %w", err)
	}
	time.Sleep(time.Duration(100+w.rnd.IntN(400)) * time.Millisecond)
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if out, err := w.cli(ctx, append([]string{"backfill"}, w.keapArgs...)...); err != nil || !strings.Contains(out, "backfill done") {
		return fmt.Errorf("backfill after SIGKILL: %v\n%s", err, out)
	}
	return w.quiesce(ctx, time.Minute)
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
