package sandbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/keapsync/keapsync/sidecar/sandbox/keapspec"
)

// Server is a running (or ready to run) Keap sandbox.
type Server struct {
	opts    Options
	log     *slog.Logger
	clock   *skewClock
	store   *store
	auth    *authority
	limiter *limiter
	hooks   *hookService
	queue   *deliveryQueue
	faults  *faultState
	reqlog  *requestLog
	handler http.Handler

	mu     sync.Mutex
	url    string
	http   *http.Server
	cancel context.CancelFunc
	done   chan struct{}
}

// Credentials are what a client needs to talk to the sandbox.
type Credentials struct {
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
	PersonalKey  string `json:"personal_key"`
	Tenant       string `json:"tenant"`
}

// New builds a sandbox and seeds it; nothing listens until Start.
func New(o Options) (*Server, error) {
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("sandbox options: %w", err)
	}
	o = o.withDefaults()
	validator, err := keapspec.NewValidator()
	if err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	s := &Server{opts: o, log: o.Logger.With("component", "sandbox"), clock: &skewClock{base: o.Clock},
		faults: newFaultState(o.Seed), reqlog: &requestLog{size: o.RequestLogSize}}
	o.Clock = s.clock // everything below reads the skewable clock

	creds := seededCredentials(o)
	s.auth = newAuthority(o, creds.ClientID, creds.ClientSecret, creds.PersonalKey)
	s.limiter = newLimiter(s.clock, o.Limits, o.Unthrottled, o.Tenant)
	s.store = newStore(s.clock)
	s.store.tenant = o.Tenant
	s.store.profile.set(o.Profile)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	s.hooks = &hookService{hooks: map[string]*Hook{}, clock: s.clock, log: s.log, client: client,
		timeout: o.DeliveryTimeout, allowRemote: o.AllowRemoteHooks}
	s.queue = &deliveryQueue{queues: map[string]*hookQueue{}, kick: make(chan struct{}, 1), clock: s.clock,
		delay: o.HookDelay, tagDelay: o.TagHookDelay, backoff: o.RetryBackoff, timeout: o.DeliveryTimeout, client: client,
		hooks: s.hooks, faults: s.faults, baseURL: s.URL, log: s.log}
	s.hooks.queue = s.queue
	s.store.publish = s.queue.enqueue

	start := time.Now()
	generate(s.store, o.Seed, o.Contacts)
	s.log.Info("sandbox seeded", "contacts", o.Contacts, "seed", o.Seed, "took", time.Since(start))

	api := &restAPI{store: s.store, hooks: s.hooks, validator: validator, baseURL: s.URL}
	apiMux := http.NewServeMux()
	api.routes(apiMux)
	mux := http.NewServeMux()
	mux.Handle("/crm/rest/", &gateway{auth: s.auth, limiter: s.limiter, faults: s.faults, clock: s.clock, log: s.reqlog, next: apiMux})
	mux.Handle("/token", logged(s.clock, s.reqlog, handle(s.auth.token)))
	mux.Handle("/app/oauth/authorize", logged(s.clock, s.reqlog, handle(s.auth.authorize)))
	(&admin{s: s}).routes(mux)
	s.handler = mux
	return s, nil
}

func seededCredentials(o Options) Credentials {
	rnd := rand.New(rand.NewPCG(uint64(o.Seed), 0xc1e47))
	hex := func(n int) string {
		const digits = "0123456789abcdef"
		b := make([]byte, n)
		for i := range b {
			b[i] = digits[rnd.IntN(16)]
		}
		return string(b)
	}
	c := Credentials{ClientID: "sbx" + hex(29), ClientSecret: hex(16), PersonalKey: "KeapAK-" + hex(40), Tenant: o.Tenant}
	if o.ClientID != "" {
		c.ClientID = o.ClientID
	}
	if o.ClientSecret != "" {
		c.ClientSecret = o.ClientSecret
	}
	if o.PersonalKey != "" {
		c.PersonalKey = o.PersonalKey
	}
	return c
}

// Handler serves the sandbox without a listener (e.g. under httptest.NewServer). Hook
// deliveries need Start; the absolute URLs in responses need URL to be known, so prefer Start.
func (s *Server) Handler() http.Handler { return s.handler }

// Start listens on Options.Addr and serves in the background until ctx ends or Close.
func (s *Server) Start(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.opts.Addr)
	if err != nil {
		return fmt.Errorf("sandbox listen: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	hs := &http.Server{Handler: s.handler, ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context { return ctx }}
	s.mu.Lock()
	s.url, s.http, s.cancel, s.done = "http://"+ln.Addr().String(), hs, cancel, make(chan struct{})
	s.mu.Unlock()
	go s.queue.run(ctx, s.opts.DispatchInterval)
	go func() {
		defer close(s.done)
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("sandbox serve", "err", err)
		}
	}()
	go func() {
		<-ctx.Done()
		shutdown, stop := context.WithTimeout(context.Background(), 5*time.Second)
		defer stop()
		_ = hs.Shutdown(shutdown)
	}()
	s.log.Info("sandbox listening", "url", s.URL())
	return nil
}

// Close stops serving and waits for the server to finish.
func (s *Server) Close() error {
	s.mu.Lock()
	cancel, done := s.cancel, s.done
	s.mu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	<-done
	s.log.Info("sandbox stopped")
	return nil
}

// URL is the base URL, e.g. http://127.0.0.1:8089. REST v1 is under URL()+"/crm/rest/v1".
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.url
}

// Credentials returns the OAuth client and personal key the sandbox accepts.
func (s *Server) Credentials() Credentials {
	return Credentials{ClientID: s.auth.clientID, ClientSecret: s.auth.clientSecret, PersonalKey: s.auth.personalKey, Tenant: s.opts.Tenant}
}

func checkLoopbackAddr(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("addr %q: %w", addr, err)
	}
	if !isLoopbackHost(host) {
		return fmt.Errorf("addr %q: only loopback addresses are allowed", addr)
	}
	return nil
}
