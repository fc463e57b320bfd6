package dashboard

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"
)

// Server is the dashboard. Build it with New; mount Handler() in another server or call Run.
type Server struct {
	cfg       Config
	db        *pgxpool.Pool
	log       *slog.Logger
	verify    *verifier
	mint      *minter // local mode only
	auth      *gotrue // Supabase Auth only
	pages     *pages
	openapi   []byte // the API's OpenAPI document, as served
	hub       *hub
	refresher refresher
	handler   http.Handler
}

// New validates cfg and builds a dashboard reading db. In local mode (cfg.Local) people sign in
// as cfg.LocalUserID with a locally minted token; otherwise through Supabase Auth.
func New(cfg Config, db *pgxpool.Pool) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("dashboard config: %w", err)
	}
	cfg = cfg.withDefaults()
	if db == nil {
		return nil, errors.New("dashboard: no database pool")
	}
	pg, err := parsePages()
	if err != nil {
		return nil, err
	}
	doc, err := loadOpenAPI()
	if err != nil {
		return nil, err
	}
	log := cfg.Log.With("component", "dashboard")
	s := &Server{cfg: cfg, db: db, log: log, pages: pg, openapi: doc}
	s.verify = &verifier{issuer: cfg.issuer(), now: cfg.Now}
	client := &http.Client{Timeout: 15 * time.Second}
	if cfg.Local {
		secret := cfg.localSecret()
		s.verify.secret = secret
		s.mint = &minter{secret: secret, now: cfg.Now, ttl: time.Hour}
	} else {
		if cfg.JWTSecret != "" {
			s.verify.secret = []byte(cfg.JWTSecret)
		}
		s.verify.jwks = newJWKS(cfg.SupabaseURL, client, cfg.Now)
		if s.auth, err = newGotrue(cfg.SupabaseURL, cfg.AnonKey, client); err != nil {
			return nil, err
		}
	}
	s.hub = newHub(db, cfg.Log.With("component", "dashboard-live"))
	s.handler = s.routes()
	return s, nil
}

// Handler serves the dashboard. Live updates over SSE need Start (Run does it).
func (s *Server) Handler() http.Handler { return s.handler }

// Start runs the LISTEN keapsync feed behind the SSE stream until ctx ends. Not needed with
// Supabase Realtime, where browsers subscribe themselves, but harmless.
func (s *Server) Start(ctx context.Context) error { return s.hub.run(ctx) }

// Run serves on cfg.Listen until ctx ends, then drains requests.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("KEAPSYNC_DASHBOARD_LISTEN %s: %w", s.cfg.Listen, err)
	}
	return s.Serve(ctx, ln)
}

// Serve is Run on a listener the caller opened (tests, or a caller that picks a free port).
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hc := s.cfg.HTTP
	if hc.Log == nil {
		hc.Log = s.log
	}
	srv := hc.Server(s.handler)
	srv.BaseContext = func(net.Listener) context.Context { return ctx }
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.hub.run(gctx) })
	g.Go(func() error {
		s.log.Info("dashboard listening", "url", s.cfg.PublicURL, "local", s.cfg.Local)
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("dashboard http: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		// Event streams never end by themselves: cut them so Shutdown does not wait the grace out.
		s.hub.closeAll()
		return srv.Shutdown(shut)
	})
	if err := g.Wait(); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// URL is where browsers reach the dashboard (cfg.PublicURL).
func (s *Server) URL() string { return s.cfg.PublicURL }
