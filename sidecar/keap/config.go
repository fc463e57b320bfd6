package keap

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// DefaultAPIURL is Keap's REST base; /v1/contacts and /v2/subscriptions are appended to it.
const DefaultAPIURL = "https://api.infusionsoft.com/crm/rest"

// Config configures a Client. Start from DefaultConfig or fill what you need: zero fields take
// their defaults in New.
type Config struct {
	// APIURL is the REST base (KEAP_API_URL). Default DefaultAPIURL.
	APIURL string
	// HTTPClient sends the requests. Default: a 60 s timeout and no redirects. A custom client
	// should refuse redirects too, or a redirect could carry the API key elsewhere.
	HTTPClient *http.Client
	// Credentials authorize every request. Required.
	Credentials Credentials
	// AppBudget is the budget of the OAuth client id (or personal key); TenantBudget the app
	// instance's. Clients drawing on the same Keap budget must share the same *Budget (law 7).
	// When nil, a private budget is made from Limits / TenantLimits.
	AppBudget, TenantBudget *Budget
	// Limits size a private AppBudget. Default KeyLimits with APIKey credentials, else OAuthLimits.
	Limits Limits
	// Retry bounds retries of throttled, failed and unreachable calls.
	Retry RetryPolicy
	// Clock drives limiter waits and backoff. Default the wall clock.
	Clock Clock
	// Logger receives retry and budget logs (never a credential). Default: discard.
	Logger *slog.Logger
	// Registerer receives the metrics. Nil: metrics are kept but not registered.
	Registerer prometheus.Registerer
	// UserAgent is sent with every request.
	UserAgent string
}

// RetryPolicy bounds retries. Delays grow exponentially from BaseDelay up to MaxDelay with
// full jitter (a random wait in [0, cap)), so callers that failed together do not retry together.
type RetryPolicy struct {
	// MaxAttempts is the number of tries for 5xx answers and network errors. Default 6.
	MaxAttempts int
	// MaxThrottled is how many 429s one call may absorb before giving up. 429s are refused
	// before Keap does any work, so they are cheap to retry; the budget's pause, not this count,
	// is what keeps retries from hammering Keap. Default 30.
	MaxThrottled int
	BaseDelay    time.Duration // default 500 ms
	MaxDelay     time.Duration // default 30 s
}

// DefaultConfig returns the defaults for an OAuth app.
func DefaultConfig() Config {
	return Config{APIURL: DefaultAPIURL, Limits: OAuthLimits, Retry: RetryPolicy{MaxAttempts: 6, MaxThrottled: 30,
		BaseDelay: 500 * time.Millisecond, MaxDelay: 30 * time.Second}, UserAgent: "keapsync"}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.APIURL == "" {
		c.APIURL = d.APIURL
	}
	if c.HTTPClient == nil {
		// No redirects: Keap's API does not redirect, and Go forwards custom headers such as
		// X-Keap-API-Key to whatever host a redirect names.
		c.HTTPClient = &http.Client{Timeout: 60 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if c.Limits == (Limits{}) {
		c.Limits = d.Limits
		if _, ok := c.Credentials.(apiKey); ok {
			c.Limits = KeyLimits
		}
	}
	if c.Retry.MaxAttempts == 0 {
		c.Retry.MaxAttempts = d.Retry.MaxAttempts
	}
	if c.Retry.MaxThrottled == 0 {
		c.Retry.MaxThrottled = d.Retry.MaxThrottled
	}
	if c.Retry.BaseDelay == 0 {
		c.Retry.BaseDelay = d.Retry.BaseDelay
	}
	if c.Retry.MaxDelay == 0 {
		c.Retry.MaxDelay = d.Retry.MaxDelay
	}
	if c.Clock == nil {
		c.Clock = wallClock{}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.UserAgent == "" {
		c.UserAgent = d.UserAgent
	}
	return c
}

// Validate reports a configuration that cannot work, naming the field.
func (c Config) Validate() error {
	var errs []error
	if c.APIURL != "" {
		u, err := url.Parse(c.APIURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("APIURL %q: want an absolute http(s) URL", c.APIURL))
		} else if u.RawQuery != "" || u.Fragment != "" {
			errs = append(errs, fmt.Errorf("APIURL %q: must not carry a query or fragment", c.APIURL))
		}
	}
	if c.Credentials == nil {
		errs = append(errs, errors.New("credentials: required (keap.APIKey or the OAuth token keeper)"))
	}
	r := c.Retry
	if r.MaxAttempts < 0 || r.MaxThrottled < 0 || r.BaseDelay < 0 || r.MaxDelay < 0 {
		errs = append(errs, errors.New("retry: negative values"))
	}
	if c.Limits.PerMinute < 0 || c.Limits.PerSecond < 0 || c.Limits.PerDay < 0 {
		errs = append(errs, errors.New("limits: negative values"))
	}
	return errors.Join(errs...)
}
