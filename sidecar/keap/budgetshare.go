package keap

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// budgetDB is what BudgetShare needs from Postgres; *pgxpool.Pool has it.
type budgetDB interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// The membership rules live in SQL (migration 20261127090000_keapsync_credentials_and_budget.sql).
const (
	sqlBudgetShare = `select keapsync.rate_budget_share($1, $2, make_interval(secs => $3))`
	sqlBudgetLeave = `select keapsync.rate_budget_leave($1, $2)`
)

// BudgetShareConfig configures a BudgetShare.
type BudgetShareConfig struct {
	// Member names this process; default host:pid plus a start time, unique per run.
	Member string
	// Interval between heartbeats. Default 5 s.
	Interval time.Duration
	// TTL after which a silent member no longer counts. Default 15 s (three missed beats).
	TTL    time.Duration
	Clock  Clock
	Logger *slog.Logger
}

// BudgetShare divides a Budget among the sidecar processes drawing on it, so two processes
// serving one account never each spend the full 1500/min. Each process heartbeats its
// membership in keapsync.rate_budget_members and sizes its limiter as the budget divided by the
// live members. A process that dies stops counting after TTL; until then the others run
// slower than they could, never faster than allowed. If Postgres is unreachable, the last
// known share stays in force.
type BudgetShare struct {
	db     budgetDB
	budget *Budget
	cfg    BudgetShareConfig
	log    *slog.Logger

	mu      sync.Mutex
	members int
	cancel  context.CancelFunc
	done    chan struct{}
}

// NewBudgetShare returns a share for budget; nothing happens until Start.
func NewBudgetShare(db budgetDB, budget *Budget, cfg BudgetShareConfig) (*BudgetShare, error) {
	if db == nil || budget == nil {
		return nil, errors.New("keap budget share: database and budget are required")
	}
	if cfg.Interval < 0 || cfg.TTL < 0 {
		return nil, errors.New("keap budget share: negative interval or ttl")
	}
	if cfg.Member == "" {
		host, _ := os.Hostname()
		cfg.Member = host + ":" + strconv.Itoa(os.Getpid()) + ":" + strconv.FormatInt(time.Now().UnixNano(), 36)
	}
	if cfg.Interval == 0 {
		cfg.Interval = 5 * time.Second
	}
	if cfg.TTL == 0 {
		cfg.TTL = 3 * cfg.Interval
	}
	if cfg.Clock == nil {
		cfg.Clock = wallClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &BudgetShare{db: db, budget: budget, cfg: cfg, members: 1,
		log: cfg.Logger.With("component", "keap.budgetshare", "budget", budget.Key())}, nil
}

// Start announces this process (synchronously, so a broken database shows at start) and keeps
// heartbeating in the background until Stop or ctx ends.
func (s *BudgetShare) Start(ctx context.Context) error {
	if _, err := s.Beat(ctx); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	s.mu.Lock()
	s.cancel, s.done = cancel, make(chan struct{})
	s.mu.Unlock()
	go s.run(ctx)
	return nil
}

// tick waits one interval; false when ctx ends first.
func (s *BudgetShare) tick(ctx context.Context) bool {
	c, stop := s.cfg.Clock.Timer(s.cfg.Interval)
	defer stop()
	select {
	case <-ctx.Done():
		return false
	case <-c:
		return true
	}
}

func (s *BudgetShare) run(ctx context.Context) {
	defer close(s.done)
	for {
		if !s.tick(ctx) {
			return
		}
		if _, err := s.Beat(ctx); err != nil && ctx.Err() == nil {
			// Keep the last share: guessing "alone" could double the spend.
			s.log.Warn("budget heartbeat failed; keeping the last share", "err", err)
		}
	}
}

// Beat heartbeats once and applies the member count; Start calls it on a timer.
func (s *BudgetShare) Beat(ctx context.Context) (int, error) {
	var n int
	if err := s.db.QueryRow(ctx, sqlBudgetShare, s.budget.Key(), s.cfg.Member, s.cfg.TTL.Seconds()).Scan(&n); err != nil {
		return 0, fmt.Errorf("budget heartbeat %s: %w", s.budget.Key(), err)
	}
	s.mu.Lock()
	s.members = n
	s.mu.Unlock()
	s.budget.SetMembers(n)
	return n, nil
}

// Members is the member count of the last heartbeat.
func (s *BudgetShare) Members() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.members
}

// Stop ends the heartbeats and leaves the budget at once, so the others speed up on their
// next beat instead of after TTL.
func (s *BudgetShare) Stop() {
	s.mu.Lock()
	cancel, done := s.cancel, s.done
	s.cancel = nil
	s.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	<-done
	ctx, stop := context.WithTimeout(context.Background(), 5*time.Second)
	defer stop()
	if _, err := s.db.Exec(ctx, sqlBudgetLeave, s.budget.Key(), s.cfg.Member); err != nil {
		s.log.Warn("leave budget", "err", err)
	}
}
