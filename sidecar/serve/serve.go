// Package serve runs keapsync's long-lived parts in one process: the HTTP surface (REST Hook
// receiver, OAuth connect flow, /healthz, /readyz, /metrics), the inbox workers, the push path,
// the scheduled reconcile and hook re-verification, the token keeper, and the Keap budget
// figures for the dashboard. SIGTERM drains: the HTTP server stops taking requests and finishes
// the ones in flight, and workers leave unfinished rows due.
package serve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"github.com/keapsync/keapsync/sidecar/accountstate"
	"github.com/keapsync/keapsync/sidecar/httpguard"
	"github.com/keapsync/keapsync/sidecar/ingest"
	"github.com/keapsync/keapsync/sidecar/keap"
	"github.com/keapsync/keapsync/sidecar/lifecycle"
)

// DB is what serve needs of a connection pool.
type DB = ingest.DB

// Config of a Server.
type Config struct {
	Listen         string        // KEAPSYNC_LISTEN
	PublicURL      string        // KEAPSYNC_PUBLIC_URL: how Keap reaches Listen
	Workers        int           // inbox workers (default 2)
	PollEvery      time.Duration // idle inbox poll (default 1 s)
	ReconcileEvery time.Duration // default 10 minutes; 0 keeps the default, negative disables
	HooksEvery     time.Duration // re-verify hooks (default 1 hour); negative disables
	DeletesEvery   time.Duration // compare id sets for unhooked deletes (default 24 hours); negative disables
	BudgetsEvery   time.Duration // copy changed Keap budgets to the database (default 5 s); negative disables
	ShutdownGrace  time.Duration // default 20 s
	// Stalls: how long work may wait with nothing advancing before /readyz fails and
	// keapsync_stalled says so (accountstate defaults: 15 minutes, reconcile 1 hour).
	Stalls accountstate.Thresholds
	// Slot is the push replication slot whose confirmed position serve samples every SlotEvery
	// (default 30 s) for keapsync.stalls ("" to skip).
	Slot      string
	SlotEvery time.Duration
	// HTTP: timeouts and the cap on slow bodies of the public listener (httpguard defaults).
	HTTP httpguard.Config
}

func (c Config) withDefaults() Config {
	if c.Workers == 0 {
		c.Workers = 2
	}
	if c.PollEvery == 0 {
		c.PollEvery = time.Second
	}
	if c.ReconcileEvery == 0 {
		c.ReconcileEvery = 10 * time.Minute
	}
	if c.HooksEvery == 0 {
		c.HooksEvery = time.Hour
	}
	if c.DeletesEvery == 0 {
		c.DeletesEvery = 24 * time.Hour
	}
	if c.BudgetsEvery == 0 {
		c.BudgetsEvery = 5 * time.Second
	}
	if c.ShutdownGrace == 0 {
		c.ShutdownGrace = 20 * time.Second
	}
	if c.SlotEvery == 0 {
		c.SlotEvery = 30 * time.Second
	}
	c.Stalls = c.Stalls.WithDefaults()
	return c
}

// Server wires the parts; set the fields, then Run.
type Server struct {
	Config   Config
	DB       DB
	Log      *slog.Logger
	Registry *prometheus.Registry
	Worker   *ingest.Worker
	Sweeper  *ingest.Sweeper
	Receiver *ingest.Receiver
	// Connect serves /oauth/start and /oauth/callback (nil without OAuth).
	Connect http.Handler
	// Tokens keeps OAuth tokens fresh (nil without OAuth).
	Tokens lifecycle.Part
	// Dashboard serves the dashboard on its own listener (nil to skip).
	Dashboard lifecycle.Part
	// Push carries local edits to Keap (logical replication consumer and workers; nil to skip).
	Push lifecycle.Part
	// Hooks returns the hook API of an account, for re-verification (nil to skip).
	Hooks func(ctx context.Context, account string) (ingest.HookAPI, error)
	// Budgets returns each account's own Keap budget (its app's, the tenant's) as the limiter
	// knows it, for keapsync.rate_budget_usage and the dashboard (nil to skip).
	Budgets func() map[string]keap.BudgetStats
	// Retention prunes what is past its window (nil to skip); Notify tells a person about
	// conditions that need one (nil without KEAPSYNC_NOTIFY_WEBHOOK_URL).
	Retention, Notify lifecycle.Part
	// BudgetShares shares the Keap budgets with the other sidecar processes on the database
	// while the server runs (nil: this process counts alone).
	BudgetShares lifecycle.Part

	loop lifecycle.Loop
	addr string
}

const sqlObserveSlot = `select keapsync.observe_slot($1)`

const sqlActiveAccounts = `select id::text from keapsync.accounts where keapsync.account_can_sync(id) order by created_at`

// Start listens on Config.Listen and runs every part in the background until Stop or ctx
// ends; it returns once the listener is open (Addr says where).
func (s *Server) Start(ctx context.Context) error {
	cfg := s.Config.withDefaults()
	log := s.Log.With("component", "serve")
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("KEAPSYNC_LISTEN %s: %w", cfg.Listen, err)
	}
	if cfg.HTTP.Log == nil {
		cfg.HTTP.Log = log
	}
	// A Start that fails closes its listener: the address is free for the next try.
	if s.Registry != nil {
		if err := s.Registry.Register(&opsCollector{db: s.DB, thresholds: cfg.Stalls, log: log}); err != nil {
			ln.Close()
			return fmt.Errorf("register ops metrics: %w", err)
		}
	}
	if err := s.loop.Go(ctx, func(ctx context.Context) error { return s.serve(ctx, ln, cfg, log) }); err != nil {
		ln.Close()
		return err
	}
	s.addr = ln.Addr().String() // only now: a Start refused while running leaves the running one's
	return nil
}

// Stop shuts down gracefully: the HTTP server stops taking requests and finishes the ones in
// flight, the parts drain, the budget shares are left. It returns when all have ended.
func (s *Server) Stop() { s.loop.Stop() }

// Done is closed when the server has ended, by Stop or by an error Err returns.
func (s *Server) Done() <-chan struct{} { return s.loop.Done() }

// Err is why the server ended (nil after Stop).
func (s *Server) Err() error { return s.loop.Err() }

// Run is Start, then Stop when ctx ends; it returns Err.
func (s *Server) Run(ctx context.Context) error { return lifecycle.Run(ctx, s) }

// Addr is the address Start listens on.
func (s *Server) Addr() string { return s.addr }

// parts are the long-running parts, in the order they start (and the reverse of their stop):
// the budget shares before anything calls Keap.
func (s *Server) parts(cfg Config) []lifecycle.Part {
	var parts []lifecycle.Part
	if s.BudgetShares != nil {
		parts = append(parts, s.BudgetShares)
	}
	if s.Worker.Loops == 0 {
		s.Worker.Loops = cfg.Workers
	}
	if s.Worker.PollEvery == 0 {
		s.Worker.PollEvery = cfg.PollEvery
	}
	parts = append(parts, s.Worker)
	for _, p := range []lifecycle.Part{s.Tokens, s.Push, s.Retention, s.Notify, s.Dashboard} {
		if p != nil {
			parts = append(parts, p)
		}
	}
	return parts
}

func (s *Server) serve(ctx context.Context, ln net.Listener, cfg Config, log *slog.Logger) error {
	srv := cfg.HTTP.Server(s.routes(cfg.Stalls))
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("http: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), cfg.ShutdownGrace)
		defer cancel()
		return srv.Shutdown(shut)
	})
	g.Go(func() error { return lifecycle.Run(gctx, s.parts(cfg)...) })
	if cfg.Slot != "" && cfg.SlotEvery > 0 {
		g.Go(func() error {
			return every(gctx, cfg.SlotEvery, func(ctx context.Context) {
				if _, err := s.DB.Exec(ctx, sqlObserveSlot, cfg.Slot); err != nil && ctx.Err() == nil {
					log.Warn("slot position not sampled; next round retries", "err", err)
				}
			})
		})
	}
	if cfg.ReconcileEvery > 0 && s.Sweeper != nil {
		g.Go(func() error {
			return every(gctx, cfg.ReconcileEvery, func(ctx context.Context) {
				s.forAccounts(ctx, "reconcile", func(ctx context.Context, account string) error {
					return s.Sweeper.Reconcile(ctx, account, ingest.ObjectTypes)
				})
			})
		})
	}
	if cfg.DeletesEvery > 0 && s.Sweeper != nil {
		g.Go(func() error {
			return every(gctx, cfg.DeletesEvery, func(ctx context.Context) {
				s.forAccounts(ctx, "delete sweep", func(ctx context.Context, account string) error {
					_, err := s.Sweeper.SweepDeletes(ctx, account, ingest.ObjectTypes)
					return err
				})
			})
		})
	}
	if cfg.HooksEvery > 0 && s.Hooks != nil && cfg.PublicURL != "" {
		g.Go(func() error {
			return every(gctx, cfg.HooksEvery, func(ctx context.Context) {
				s.forAccounts(ctx, "verify hooks", func(ctx context.Context, account string) error {
					api, err := s.Hooks(ctx, account)
					if err != nil {
						return err
					}
					_, err = ingest.EnsureHooks(ctx, s.DB, api, account, cfg.PublicURL)
					return err
				})
			})
		})
	}
	if cfg.BudgetsEvery > 0 && s.Budgets != nil {
		r := &budgetReporter{db: s.DB, budgets: s.Budgets}
		g.Go(func() error {
			return every(gctx, cfg.BudgetsEvery, func(ctx context.Context) {
				if err := r.report(ctx); err != nil && ctx.Err() == nil {
					log.Warn("keap budgets not recorded; next round retries", "err", err)
				}
			})
		})
	}
	log.Info("serving", "listen", ln.Addr().String(), "public_url", cfg.PublicURL)
	err := g.Wait()
	log.Info("stopped")
	return err
}

// forAccounts runs f for every active account; one account's failure is logged, not fatal.
func (s *Server) forAccounts(ctx context.Context, what string, f func(ctx context.Context, account string) error) {
	rows, err := s.DB.Query(ctx, sqlActiveAccounts)
	if err != nil {
		s.Log.Error(what+": list accounts", "err", err)
		return
	}
	accounts, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		s.Log.Error(what+": list accounts", "err", err)
		return
	}
	for _, a := range accounts {
		if err := f(ctx, a); err != nil && ctx.Err() == nil {
			s.Log.Warn(what+" failed; next round retries", "account", a, "err", err)
		}
	}
}

// every runs f now and then every d until ctx ends.
func every(ctx context.Context, d time.Duration, f func(context.Context)) error {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		f(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (s *Server) routes(stalls accountstate.Thresholds) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/hooks/", s.Receiver)
	if s.Connect != nil {
		mux.Handle("/oauth/", s.Connect)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.Handle("GET /readyz", s.ready(stalls))
	if s.Registry != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(s.Registry, promhttp.HandlerOpts{}))
	}
	return mux
}

// Ready is the /readyz handler on its own, with Config.Stalls (the state-matrix test compares it
// with the other surfaces).
func (s *Server) Ready() http.Handler { return s.ready(s.Config.withDefaults().Stalls) }

// ready: the database answers, no account waits for a person (not connected, needs
// re-authorization) and no path is stalled (keapsync.stalls: work waits and nothing advanced;
// a stalled pod must not look Ready). Each account's state is the line keapsync.account_state words (the
// dashboard, doctor and auth status show the same); failing or paused accounts are reported
// but keep the process ready, since hooks must still be taken.
func (s *Server) ready(thresholds accountstate.Thresholds) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { s.readiness(w, r, thresholds) }
}

func (s *Server) readiness(w http.ResponseWriter, r *http.Request, thresholds accountstate.Thresholds) {
	checks := map[string]any{}
	status := http.StatusOK
	if states, err := accountstate.List(r.Context(), s.DB); err != nil {
		// The error names the user, database, host and port; /readyz answers whoever asks, so
		// it says only which check failed, and the log (for the operator) says why.
		s.Log.Warn("readiness: database check failed", "err", err)
		checks["database"] = "unreachable"
		status = http.StatusServiceUnavailable
	} else {
		checks["database"] = "ok"
		accounts := map[string]string{}
		for _, a := range states {
			accounts[a.Display()] = a.Summary()
			if a.State.NeedsPerson() {
				status = http.StatusServiceUnavailable
			}
		}
		checks["accounts"] = accounts
		stalls, err := accountstate.Stalls(r.Context(), s.DB, thresholds)
		if err != nil {
			s.Log.Warn("readiness: stall check failed", "err", err)
			checks["stalls"] = "unreadable"
			status = http.StatusServiceUnavailable
		} else if len(stalls) > 0 {
			names := map[string]string{}
			for _, a := range states {
				names[a.ID] = a.Display()
			}
			stalled := map[string]string{}
			for _, st := range stalls {
				key := st.Path
				if st.AccountID != "" {
					key = names[st.AccountID] + "/" + st.Path
				}
				stalled[key] = st.Summary()
			}
			checks["stalls"] = stalled
			status = http.StatusServiceUnavailable
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(checks)
}
