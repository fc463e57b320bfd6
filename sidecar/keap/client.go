package keap

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Client is the one way keapsync talks to Keap's REST API. It is safe for concurrent use.
type Client struct {
	cfg     Config
	base    *url.URL
	app     *Budget
	tenant  *Budget
	log     *slog.Logger
	metrics *metrics

	// refreshMu and refreshGen make token refreshes single-flight within the client: calls
	// that were sent with a token already replaced retry with the new one instead of
	// refreshing again (each refresh rotates the refresh token: FACTS.md §1).
	refreshMu  sync.Mutex
	refreshGen uint64
}

// New checks cfg, fills defaults and returns a client.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("keap client config: %w", err)
	}
	cfg = cfg.withDefaults()
	base, err := url.Parse(strings.TrimRight(cfg.APIURL, "/"))
	if err != nil {
		return nil, fmt.Errorf("keap client config: APIURL: %w", err)
	}
	c := &Client{cfg: cfg, base: base, app: cfg.AppBudget, tenant: cfg.TenantBudget,
		log: cfg.Logger.With("component", "keap")}
	if c.app == nil {
		if c.app, err = NewBudget(BudgetConfig{Key: "app", Limits: cfg.Limits, Clock: cfg.Clock, Logger: cfg.Logger}); err != nil {
			return nil, err
		}
	}
	if c.tenant == nil {
		if c.tenant, err = NewBudget(BudgetConfig{Key: "tenant", Limits: TenantLimits, Clock: cfg.Clock, Logger: cfg.Logger}); err != nil {
			return nil, err
		}
	}
	if c.metrics, err = newMetrics(cfg.Registerer); err != nil {
		return nil, fmt.Errorf("keap client metrics: %w", err)
	}
	return c, nil
}

// AppBudget and TenantBudget return the budgets the client draws on.
func (c *Client) AppBudget() *Budget { return c.app }

// TenantBudget returns the tenant budget.
func (c *Client) TenantBudget() *Budget { return c.tenant }

// request is one API call. endpoint is the route template for metrics and errors; path is
// below APIURL, or an absolute URL (a next link, already checked by resolve).
type request struct {
	method     string
	endpoint   string
	path       string
	query      url.Values
	body       any
	header     http.Header
	idempotent bool
}

func (c *Client) get(endpoint, path string, q url.Values) request {
	return request{method: http.MethodGet, endpoint: endpoint, path: path, query: q, idempotent: true}
}

// do sends r, retrying what can be retried, and decodes a 2xx body into out (when non-nil).
//
// Retry rules:
//   - 429: always retried (Keap refused before doing anything), up to Retry.MaxThrottled times;
//     the budget pauses for the backoff and halves its rate, so every caller slows down.
//   - 5xx: retried with backoff up to Retry.MaxAttempts when the call is idempotent. A create
//     (POST) is retried only on 502/503/504, which a gateway sends when the application never
//     saw the request; a 500 may come after the record was written.
//   - network errors: retried only when idempotent, see below.
//   - 401 saying the token is invalid or expired: Refresh once (if the credentials can), then
//     send again once.
//   - any other 4xx: cannot succeed by repeating; returned at once as *APIError.
func (c *Client) do(ctx context.Context, r request, out any) error {
	var payload []byte
	if r.body != nil {
		var err error
		if payload, err = json.Marshal(r.body); err != nil {
			return fmt.Errorf("keap %s %s: encode body: %w", r.method, r.endpoint, err)
		}
	}
	target := c.target(r)
	refreshed := false
	failures, throttled := 0, 0
	for {
		if err := c.wait(ctx); err != nil {
			return fmt.Errorf("keap %s %s: %w", r.method, r.endpoint, err)
		}
		gen := c.generation()
		status, header, body, err := c.send(ctx, r, target, payload)
		if errors.Is(err, errNotSent) {
			return fmt.Errorf("keap %s %s: %w", r.method, r.endpoint, err)
		}
		if err != nil {
			c.metrics.response(r.endpoint, r.method, 0)
			if ctx.Err() != nil {
				return fmt.Errorf("keap %s %s: %w", r.method, r.endpoint, ctx.Err())
			}
			if !r.idempotent {
				// Never resend a create blindly: the request may have reached Keap before the
				// connection broke, and a second POST would make a second contact or order.
				// The caller knows how to check (e.g. PUT /v1/contacts by email) and decides.
				return fmt.Errorf("keap %s %s (not retried: not idempotent): %w", r.method, r.endpoint, err)
			}
			if failures++; failures >= c.cfg.Retry.MaxAttempts {
				return fmt.Errorf("keap %s %s: giving up after %d attempts: %w", r.method, r.endpoint, failures, err)
			}
			if err := c.backoff(ctx, r, "network", failures, err); err != nil {
				return err
			}
			continue
		}
		c.metrics.response(r.endpoint, r.method, status)
		c.observe(header)
		if status >= 200 && status < 300 {
			if out == nil {
				return nil
			}
			return decodeBody(r, status, body, out)
		}
		apiErr := parseAPIError(status, body)
		apiErr.Method, apiErr.Endpoint = r.method, r.endpoint
		switch {
		case apiErr.tokenRejected() && !refreshed:
			rf, ok := c.cfg.Credentials.(Refresher)
			if !ok {
				return apiErr
			}
			refreshed = true
			c.metrics.retries.WithLabelValues(r.endpoint, "refresh").Inc()
			if err := c.refresh(ctx, rf, gen, apiErr); err != nil {
				return fmt.Errorf("%w (refresh failed: %w)", apiErr, err)
			}
		case status == http.StatusTooManyRequests:
			if throttled++; throttled > c.cfg.Retry.MaxThrottled {
				return fmt.Errorf("keap %s %s: still throttled after %d retries: %w", r.method, r.endpoint, throttled-1, apiErr)
			}
			pause := c.delay(throttled)
			c.app.Throttled(pause)
			c.tenant.Throttled(pause)
			c.metrics.retries.WithLabelValues(r.endpoint, "429").Inc()
			c.log.Debug("throttled; budget paused", "endpoint", r.endpoint, "pause", pause, "message", apiErr.Message)
		case status >= 500 && (r.idempotent || status == http.StatusBadGateway ||
			status == http.StatusServiceUnavailable || status == http.StatusGatewayTimeout):
			if failures++; failures >= c.cfg.Retry.MaxAttempts {
				return fmt.Errorf("keap %s %s: giving up after %d attempts: %w", r.method, r.endpoint, failures, apiErr)
			}
			if err := c.backoff(ctx, r, "5xx", failures, apiErr); err != nil {
				return err
			}
		default:
			return apiErr
		}
	}
}

func (c *Client) generation() uint64 {
	c.refreshMu.Lock()
	defer c.refreshMu.Unlock()
	return c.refreshGen
}

// refresh renews the credentials unless another call already did since this one was sent.
func (c *Client) refresh(ctx context.Context, rf Refresher, sentWith uint64, cause *APIError) error {
	c.refreshMu.Lock()
	defer c.refreshMu.Unlock()
	if c.refreshGen != sentWith {
		return nil
	}
	c.log.Info("access token rejected; refreshing once", "endpoint", cause.Endpoint, "code", cause.Code)
	if err := rf.Refresh(ctx); err != nil {
		return err
	}
	c.refreshGen++
	return nil
}

// wait draws one call from the tenant budget, then the app budget. The app budget is the
// tighter one (1500/min against the tenant's 10,000), so taking it last means its grant goes
// straight onto the wire and Keap sees the spacing the limiter chose; a tenant token held
// meanwhile costs little.
func (c *Client) wait(ctx context.Context) error {
	// The account is the flow the app budget shares fairly (all accounts of one OAuth app draw
	// on it); its tenant budget names it.
	ctx = withFlow(ctx, c.tenant)
	if err := c.tenant.Wait(ctx); err != nil {
		return err
	}
	return c.app.Wait(ctx)
}

func (c *Client) observe(h http.Header) {
	c.app.observe(productWindows(h))
	c.tenant.observe(tenantWindows(h))
	c.metrics.budget(c.app)
	c.metrics.budget(c.tenant)
}

// delay is full-jitter exponential backoff: uniform in [0, min(MaxDelay, BaseDelay*2^(n-1))).
func (c *Client) delay(n int) time.Duration {
	ceiling := c.cfg.Retry.MaxDelay
	if n-1 < 32 {
		ceiling = min(ceiling, c.cfg.Retry.BaseDelay<<(n-1))
	}
	if ceiling <= 0 {
		return 0
	}
	return rand.N(ceiling)
}

func (c *Client) backoff(ctx context.Context, r request, reason string, n int, cause error) error {
	d := c.delay(n)
	c.metrics.retries.WithLabelValues(r.endpoint, reason).Inc()
	c.log.Info("retrying keap call", "method", r.method, "endpoint", r.endpoint, "attempt", n+1, "in", d, "cause", cause)
	timer, stop := c.cfg.Clock.Timer(d)
	defer stop()
	select {
	case <-timer:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("keap %s %s: %w (while backing off after: %w)", r.method, r.endpoint, ctx.Err(), cause)
	}
}

// decodeBody decodes a 2xx answer the caller expects a value from. An empty body, null or JSON
// that does not decode is an error, never a zero value: a zero record would be taken for a
// record with id 0 and the real id lost.
func decodeBody(r request, status int, body []byte, out any) error {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || bytes.Equal(trimmed, jsonNull) {
		return &ResponseError{Method: r.method, Endpoint: r.endpoint, Status: status, Body: body,
			Err: errors.New("no value in the body")}
	}
	if err := json.Unmarshal(body, out); err != nil {
		return &ResponseError{Method: r.method, Endpoint: r.endpoint, Status: status, Body: body, Err: err}
	}
	return nil
}

// maxBody bounds a response read: a 1000-contact page with custom fields is a few MB.
const maxBody = 64 << 20

func (c *Client) send(ctx context.Context, r request, target string, payload []byte) (int, http.Header, []byte, error) {
	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, target, body)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("%w: build request: %w", errNotSent, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.cfg.UserAgent)
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range r.header {
		req.Header[k] = v
	}
	if err := c.cfg.Credentials.Authorize(ctx, req); err != nil {
		// Not a network error: the token keeper may say the account needs re-authorization.
		return 0, nil, nil, fmt.Errorf("%w: authorize: %w", errNotSent, err)
	}
	start := time.Now()
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	c.metrics.duration.WithLabelValues(r.endpoint).Observe(time.Since(start).Seconds())
	if err != nil {
		return 0, nil, nil, fmt.Errorf("read response: %w", err)
	}
	return resp.StatusCode, resp.Header, data, nil
}

// target is the request URL: APIURL + path + query, or a resolved next link as is.
func (c *Client) target(r request) string {
	if strings.HasPrefix(r.path, "http://") || strings.HasPrefix(r.path, "https://") {
		return r.path
	}
	u := *c.base
	u.Path = c.base.Path + r.path
	if len(r.query) > 0 {
		u.RawQuery = r.query.Encode()
	}
	return u.String()
}

// errNotSent marks a failure before anything went on the wire; it is never retried.
var errNotSent = errors.New("request not sent")

// errForeignLink refuses a next link that leaves the API: credentials go only to APIURL.
var errForeignLink = errors.New("keap: next link outside APIURL")

// resolve turns a next/previous link into a URL on APIURL's scheme and host. Keap returns
// absolute links on its own host; a proxy or the sandbox may not, and a link to any other
// place must never receive our credentials, so only the path and query are kept.
func (c *Client) resolve(link string) (string, error) {
	u, err := url.Parse(link)
	if err != nil {
		return "", fmt.Errorf("next link %q: %w", link, err)
	}
	if !strings.HasPrefix(u.Path, c.base.Path+"/") {
		return "", fmt.Errorf("%w: %q", errForeignLink, link)
	}
	out := *c.base
	out.Path, out.RawPath, out.RawQuery = u.Path, u.RawPath, u.RawQuery
	return out.String(), nil
}
