package keap

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keapsync/keapsync/sidecar/devtools/pgtest"
	"github.com/keapsync/keapsync/sidecar/devtools/testlog"
	"github.com/keapsync/keapsync/sidecar/sandbox"
	"github.com/keapsync/keapsync/sidecar/sandbox/keapspec"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// fakeClock is a discrete-event clock shared by the client and the sandbox: when a timer is
// pending, it jumps to the earliest one, so a limiter wait of a minute costs microseconds.
// gate decides whether time may move now and, if so, calls advance while holding whatever
// must not change meanwhile (see quietWhen); by default time always may move. It never moves
// while a fired timer is not yet stopped: its waiter has woken but not yet acted (Clock).
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []fakeTimer
	fired  map[chan time.Time]bool // fired, not yet stopped
	gate   func(advance func() bool) bool
	kick   chan struct{}
}

type fakeTimer struct {
	at time.Time
	ch chan time.Time
}

func newFakeClock(t testing.TB) *fakeClock {
	c := &fakeClock{now: t0, fired: map[chan time.Time]bool{}, gate: always, kick: make(chan struct{}, 1)}
	stop := make(chan struct{})
	done := make(chan struct{})
	go c.drive(stop, done)
	t.Cleanup(func() { close(stop); <-done })
	return c
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Timer(d time.Duration) (<-chan time.Time, func()) {
	ch := make(chan time.Time, 1)
	c.mu.Lock()
	if d <= 0 {
		ch <- c.now
		c.mu.Unlock()
		return ch, func() {}
	}
	c.timers = append(c.timers, fakeTimer{at: c.now.Add(d), ch: ch})
	c.mu.Unlock()
	select {
	case c.kick <- struct{}{}:
	default:
	}
	return ch, func() { c.stop(ch) }
}

// stop drops ch's timer: time must not jump to a moment nobody waits for (a poked budget
// waiter sleeps again on a new timer, and a jump to its old one would pass the token it is
// about to take), nor move again while ch's waiter is still acting on it.
func (c *fakeClock) stop(ch chan time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.timers = slices.DeleteFunc(c.timers, func(tm fakeTimer) bool { return tm.ch == ch })
	delete(c.fired, ch)
}

func always(advance func() bool) bool { return advance() }

func never(func() bool) bool { return false }

// setGate replaces the gate.
func (c *fakeClock) setGate(g func(advance func() bool) bool) {
	c.mu.Lock()
	c.gate = g
	c.mu.Unlock()
}

// Advance moves time by d at once, firing what falls due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.fireLocked()
	c.mu.Unlock()
}

func (c *fakeClock) fireLocked() {
	keep := c.timers[:0]
	for _, tm := range c.timers {
		if !tm.at.After(c.now) {
			tm.ch <- c.now
			c.fired[tm.ch] = true
		} else {
			keep = append(keep, tm)
		}
	}
	c.timers = keep
}

func (c *fakeClock) drive(stop, done chan struct{}) {
	defer close(done)
	for {
		select {
		case <-stop:
			return
		case <-c.kick:
		}
		for spins := 0; ; spins++ {
			c.mu.Lock()
			pending, gate := len(c.timers), c.gate
			c.mu.Unlock()
			if pending == 0 {
				break
			}
			if !gate(c.advance) {
				// Someone is still working (a request in flight); let it run. How long this
				// polls affects only how fast the test runs, never what fake time it sees.
				if spins < 50 {
					runtime.Gosched()
				} else {
					time.Sleep(20 * time.Microsecond)
				}
				select {
				case <-stop:
					return
				default:
				}
				continue
			}
			spins = 0
		}
	}
}

// advance jumps to the earliest pending timer and fires what falls due, unless a timer
// already fired is not yet stopped.
func (c *fakeClock) advance() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.timers) == 0 || len(c.fired) > 0 {
		return false
	}
	next := c.timers[0].at
	for _, tm := range c.timers[1:] {
		if tm.at.Before(next) {
			next = tm.at
		}
	}
	if next.After(c.now) {
		c.now = next
	}
	c.fireLocked()
	return true
}

// env is a sandbox and a client on one fake clock, every exchange checked by keapspec.
type env struct {
	t      testing.TB
	clock  *fakeClock
	srv    *sandbox.Server
	client *Client
	reg    *prometheus.Registry
	wire   *countingTransport
}

// countingTransport counts finished round trips: a granted call is on the wire until then.
type countingTransport struct {
	next http.RoundTripper
	done atomic.Uint64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	defer c.done.Add(1)
	return c.next.RoundTrip(r)
}

type envOptions struct {
	sandbox   sandbox.Options
	oauth     bool // OAuth bearer token (1500/min) instead of the personal key (240/min)
	creds     Credentials
	config    func(*Config)
	rawClient bool // no keapspec validation (fault bodies, deliberate bad requests)
}

func newEnv(t testing.TB, o envOptions) *env {
	t.Helper()
	clock := newFakeClock(t)
	o.sandbox.Clock = clock
	o.sandbox.Logger = testLogger(t, slog.LevelWarn)
	srv, err := sandbox.New(o.sandbox)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	e := &env{t: t, clock: clock, srv: srv, reg: prometheus.NewRegistry(), wire: &countingTransport{next: validating(t, o.rawClient)}}
	cfg := Config{
		APIURL:     srv.URL() + "/crm/rest",
		HTTPClient: &http.Client{Transport: e.wire},
		Clock:      clock,
		Logger:     testLogger(t, slog.LevelWarn),
		Registerer: e.reg,
		Limits:     KeyLimits,
	}
	switch {
	case o.creds != nil:
		cfg.Credentials = o.creds
	case o.oauth:
		cfg.Credentials, cfg.Limits = BearerToken(oauthLogin(t, srv).AccessToken), OAuthLimits
	default:
		cfg.Credentials = APIKey(srv.Credentials().PersonalKey)
	}
	if o.config != nil {
		o.config(&cfg)
	}
	if e.client, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	return e
}

// validating checks every REST exchange against Keap's corrected documents.
func validating(t testing.TB, raw bool) http.RoundTripper {
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	t.Cleanup(tr.CloseIdleConnections)
	if raw {
		return tr
	}
	v, err := keapspec.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	return &keapspec.Transport{Next: tr, Validator: v, Report: func(err error) { t.Errorf("contract violation: %v", err) }}
}

type tokens struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
}

// oauthLogin runs the authorization code flow against the auto-approving sandbox.
func oauthLogin(t testing.TB, srv *sandbox.Server) tokens {
	t.Helper()
	srv.SetAutoApprove(true)
	creds := srv.Credentials()
	redirect := "http://127.0.0.1:1/callback"
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	q := url.Values{"client_id": {creds.ClientID}, "redirect_uri": {redirect}, "response_type": {"code"}, "scope": {"full"}}
	resp, err := hc.Get(srv.URL() + "/app/oauth/authorize?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || loc.Query().Get("code") == "" {
		t.Fatalf("authorize: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	return tokenRequest(t, srv, url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")},
		"client_id": {creds.ClientID}, "client_secret": {creds.ClientSecret}, "redirect_uri": {redirect}}, false)
}

func tokenRequest(t testing.TB, srv *sandbox.Server, form url.Values, basic bool) tokens {
	t.Helper()
	tk, err := postToken(srv, form, basic)
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

func postToken(srv *sandbox.Server, form url.Values, basic bool) (tokens, error) {
	req, _ := http.NewRequest(http.MethodPost, srv.URL()+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basic {
		req.SetBasicAuth(srv.Credentials().ClientID, srv.Credentials().ClientSecret)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return tokens{}, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return tokens{}, fmt.Errorf("token endpoint: %d %s", resp.StatusCode, body)
	}
	var tk tokens
	if err := jsonUnmarshal(body, &tk); err != nil {
		return tokens{}, err
	}
	return tk, nil
}

// refreshingCreds is a minimal stand-in for the token keeper: bearer token plus Refresh.
type refreshingCreds struct {
	srv       *sandbox.Server
	mu        sync.Mutex
	tk        tokens
	refreshes int
}

func (r *refreshingCreds) Authorize(_ context.Context, req *http.Request) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	req.Header.Set("Authorization", "Bearer "+r.tk.AccessToken)
	return nil
}

func (r *refreshingCreds) Refresh(context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refreshes++
	tk, err := postToken(r.srv, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {r.tk.RefreshToken}}, true)
	if err != nil {
		return err
	}
	r.tk = tk
	return nil
}

func testLogger(t testing.TB, level slog.Level) *slog.Logger { return testlog.Level(t, level) }

// count429 counts the sandbox's 429 answers.
func count429(srv *sandbox.Server) (n int) {
	for _, r := range srv.Requests() {
		if r.Status == http.StatusTooManyRequests {
			n++
		}
	}
	return n
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// standIn is a client of h served at a test address: Keap as a test scripts it.
func standIn(t testing.TB, h http.HandlerFunc) *Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	cfg := DefaultConfig()
	cfg.APIURL, cfg.Credentials = srv.URL, APIKey("key")
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
