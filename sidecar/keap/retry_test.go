package keap

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/keapsync/keapsync/sidecar/sandbox"
)

func TestClientErrorFailsFastWithKeapMessage(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{sandbox: sandbox.Options{Contacts: 1}})
	ctx := context.Background()
	e.srv.ClearRequests()
	_, err := e.client.CreateContact(ctx, map[string]any{"given_name": "Nobody"})
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 400 || !errors.Is(err, ErrBadRequest) ||
		apiErr.Message != "Contact must have at least one email address or phone number" || apiErr.Endpoint != "/v1/contacts" {
		t.Fatalf("err = %v (%+v)", err, apiErr)
	}
	if !strings.Contains(err.Error(), "at least one email address") {
		t.Fatalf("message not in error text: %v", err)
	}
	_, err = e.client.GetOrder(ctx, 424242)
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "Order with ID 424242 not found") {
		t.Fatalf("404: %v", err)
	}
	if n := len(e.srv.Requests()); n != 2 {
		t.Fatalf("%d requests for two failing calls: a 4xx must not be retried", n)
	}
	if got := testutil.ToFloat64(e.client.metrics.requests.WithLabelValues("/v1/orders/{id}", "GET", "404")); got != 1 {
		t.Fatalf("requests metric by route template: %v", got)
	}
}

func TestServerErrorsRetried(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{sandbox: sandbox.Options{Contacts: 30, Seed: 9}, rawClient: false})
	c, ctx := e.client, context.Background()
	e.srv.SetFaults(sandbox.Faults{ErrorRate: 0.2})
	all, err := Collect(c.Contacts(ctx, ContactQuery{Limit: 3}))
	if err != nil || len(all) != 30 {
		t.Fatalf("walk through 20%% 500s: %d contacts, %v", len(all), err)
	}
	for _, ct := range all[:10] {
		if _, err := c.GetContact(ctx, ct.ID); err != nil {
			t.Fatalf("get through 500s: %v", err)
		}
	}
	retried := testutil.ToFloat64(c.metrics.retries.WithLabelValues("/v1/contacts", "5xx")) +
		testutil.ToFloat64(c.metrics.retries.WithLabelValues("/v1/contacts/{id}", "5xx"))
	fivexx := 0
	for _, r := range e.srv.Requests() {
		if r.Status == 500 {
			fivexx++
		}
	}
	if fivexx == 0 || retried != float64(fivexx) {
		t.Fatalf("%d 500s answered, %v retries counted", fivexx, retried)
	}

	// Always failing: an idempotent call gives up after MaxAttempts, a create after one try.
	e.srv.SetFaults(sandbox.Faults{ErrorRate: 1})
	e.srv.ClearRequests()
	if _, err := c.GetContact(ctx, all[0].ID); !errors.Is(err, ErrServer) {
		t.Fatalf("want a server error, got %v", err)
	}
	if n := len(e.srv.Requests()); n != DefaultConfig().Retry.MaxAttempts {
		t.Fatalf("%d attempts, want %d", n, DefaultConfig().Retry.MaxAttempts)
	}
	e.srv.ClearRequests()
	if _, err := c.CreateContact(ctx, map[string]any{"email_addresses": []map[string]string{{"email": "x@y.z", "field": "EMAIL1"}}}); !errors.Is(err, ErrServer) {
		t.Fatalf("create: %v", err)
	}
	if n := len(e.srv.Requests()); n != 1 {
		t.Fatalf("a create answered 500 was sent %d times; it may have been written, so never resend", n)
	}
}

func TestThrottledRetriedAndSlowsTheBudget(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{sandbox: sandbox.Options{Contacts: 3}})
	c, ctx := e.client, context.Background()
	e.srv.SetFaults(sandbox.Faults{Storm429: 5})
	start := e.clock.Now()
	if _, err := c.ListContacts(ctx, ContactQuery{}); err != nil {
		t.Fatal(err)
	}
	if n := count429(e.srv); n != 5 {
		t.Fatalf("%d 429s", n)
	}
	if got := testutil.ToFloat64(c.metrics.retries.WithLabelValues("/v1/contacts", "429")); got != 5 {
		t.Fatalf("429 retries counted: %v", got)
	}
	st := c.AppBudget().Stats()
	if st.Factor >= 1 || !e.clock.Now().After(start) {
		t.Fatalf("a 429 must slow the budget and pause it: %+v, %v elapsed", st, e.clock.Now().Sub(start))
	}

	// Beyond MaxThrottled the call gives up with the 429 and Keap's message.
	e.srv.SetFaults(sandbox.Faults{Storm429: 1000})
	_, err := c.ListContacts(ctx, ContactQuery{})
	var apiErr *APIError
	if !errors.Is(err, ErrRateLimited) || !errors.As(err, &apiErr) || !strings.Contains(apiErr.Message, "Rate limit quota violation") {
		t.Fatalf("endless storm: %v", err)
	}
}

func TestRevokedKeyIsAClearError(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{sandbox: sandbox.Options{Contacts: 1}, creds: APIKey("KeapAK-revoked-or-wrong")})
	e.srv.ClearRequests()
	_, err := e.client.ListContacts(context.Background(), ContactQuery{})
	var apiErr *APIError
	if !errors.Is(err, ErrUnauthorized) || !errors.As(err, &apiErr) || apiErr.Code != "oauth.v2.InvalidApiKey" || apiErr.Message != "Invalid ApiKey" {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(err.Error(), "KeapAK-revoked") {
		t.Fatal("the key leaked into the error")
	}
	if n := len(e.srv.Requests()); n != 1 {
		t.Fatalf("%d requests; a rejected key cannot succeed by repeating", n)
	}
}

func TestExpiredTokenRefreshedOnceThenRevoked(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{sandbox: sandbox.Options{Contacts: 2}})
	creds := &refreshingCreds{srv: e.srv, tk: oauthLogin(t, e.srv)}
	var err error
	if e.client, err = New(Config{APIURL: e.srv.URL() + "/crm/rest", Credentials: creds, Clock: e.clock,
		HTTPClient: &http.Client{Transport: validating(t, false)}}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := e.client.ListContacts(ctx, ContactQuery{}); err != nil || creds.refreshes != 0 {
		t.Fatalf("fresh token: %v, %d refreshes", err, creds.refreshes)
	}
	e.clock.Advance(25 * time.Hour) // access tokens live 24 h
	if _, err := e.client.ListContacts(ctx, ContactQuery{}); err != nil || creds.refreshes != 1 {
		t.Fatalf("expired token: %v, %d refreshes", err, creds.refreshes)
	}
	e.srv.RevokeTokens("") // access and refresh tokens all dead: re-authorization needed
	_, err = e.client.ListContacts(ctx, ContactQuery{})
	if !errors.Is(err, ErrUnauthorized) || creds.refreshes != 2 || !strings.Contains(err.Error(), "Invalid refresh token") {
		t.Fatalf("revoked: %v, %d refreshes", err, creds.refreshes)
	}
}

// failingTransport drops the first n round trips as if the connection were reset.
type failingTransport struct {
	next  http.RoundTripper
	fail  atomic.Int32
	calls atomic.Int32
}

func (f *failingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	f.calls.Add(1)
	if f.fail.Add(-1) >= 0 {
		return nil, syscall.ECONNRESET
	}
	return f.next.RoundTrip(r)
}

func TestNetworkErrorsRetriedOnlyWhenIdempotent(t *testing.T) {
	t.Parallel()
	ft := &failingTransport{}
	e := newEnv(t, envOptions{sandbox: sandbox.Options{Contacts: 2}, config: func(c *Config) {
		ft.next = c.HTTPClient.Transport
		c.HTTPClient = &http.Client{Transport: ft}
	}})
	ctx := context.Background()
	ft.fail.Store(2)
	if _, err := e.client.ListContacts(ctx, ContactQuery{}); err != nil || ft.calls.Load() != 3 {
		t.Fatalf("GET after two resets: %v, %d calls", err, ft.calls.Load())
	}
	ft.fail.Store(1)
	ft.calls.Store(0)
	_, err := e.client.CreateContact(ctx, map[string]any{"email_addresses": []map[string]string{{"email": "n@e.t", "field": "EMAIL1"}}})
	if !errors.Is(err, syscall.ECONNRESET) || ft.calls.Load() != 1 || !strings.Contains(err.Error(), "not idempotent") {
		t.Fatalf("POST after a reset: %v, %d calls", err, ft.calls.Load())
	}
	// PUT by email is safe to resend.
	ft.fail.Store(1)
	ft.calls.Store(0)
	if _, err := e.client.UpsertContact(ctx, DuplicateEmail, map[string]any{"email_addresses": []map[string]string{{"email": "n@e.t", "field": "EMAIL1"}}}); err != nil || ft.calls.Load() != 2 {
		t.Fatalf("PUT after a reset: %v, %d calls", err, ft.calls.Load())
	}
}

func TestCanceledDuringBackoff(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{sandbox: sandbox.Options{Contacts: 1}})
	e.clock.setGate(never) // time stands still: backoff never ends
	e.srv.SetFaults(sandbox.Faults{ErrorRate: 1})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := e.client.ListContacts(ctx, ContactQuery{})
		done <- err
	}()
	// Cancel once the client is backing off (it counts the retry before it waits), not merely
	// once the request reached the sandbox: the answer may still be on its way back.
	for testutil.ToFloat64(e.client.metrics.retries.WithLabelValues("/v1/contacts", "5xx")) == 0 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) || !errors.Is(err, ErrServer) {
		t.Fatalf("want canceled wrapping the 500, got %v", err)
	}
}

// Calls that fail together on an expired token refresh once between them: each refresh rotates
// the refresh token, so refreshing per call would burn through them.
func TestConcurrentExpiredCallsRefreshOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{sandbox: sandbox.Options{Contacts: 2}})
	creds := &refreshingCreds{srv: e.srv, tk: oauthLogin(t, e.srv)}
	c, err := New(Config{APIURL: e.srv.URL() + "/crm/rest", Credentials: creds, Clock: e.clock,
		HTTPClient: &http.Client{Transport: validating(t, false)}})
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(25 * time.Hour)
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			_, err := c.ListContacts(context.Background(), ContactQuery{})
			errs <- err
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if creds.refreshes != 1 {
		t.Fatalf("%d refreshes for one expired token", creds.refreshes)
	}
}

type brokenCreds struct{}

func (brokenCreds) Authorize(context.Context, *http.Request) error {
	return errors.New("account needs re-authorization")
}

func TestAuthorizeFailureIsNotRetried(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{sandbox: sandbox.Options{Contacts: 1}, creds: brokenCreds{}})
	e.srv.ClearRequests()
	_, err := e.client.GetContact(context.Background(), 1)
	if err == nil || !strings.Contains(err.Error(), "re-authorization") || len(e.srv.Requests()) != 0 {
		t.Fatalf("err = %v, %d requests", err, len(e.srv.Requests()))
	}
	if got := testutil.ToFloat64(e.client.metrics.retries.WithLabelValues("/v1/contacts/{id}", "network")); got != 0 {
		t.Fatalf("authorize failure retried %v times", got)
	}
}
