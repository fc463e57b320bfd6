package sandbox

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Options configure a Server. The zero value is usable: defaults are filled in by New.
type Options struct {
	// Addr is the listen address; only loopback addresses are allowed. Default 127.0.0.1:0.
	Addr string
	// Clock is the time source. Default: the wall clock.
	Clock Clock
	// Logger receives the server's logs. Default: discard.
	Logger *slog.Logger
	// Seed makes generated data and credentials reproducible.
	Seed int64
	// Contacts is how many contacts the generator seeds (with tags, orders, subscriptions).
	Contacts int
	// Tenant is the app name that appears in scope ("full|<tenant>") and x-keap-tenant-id.
	Tenant string
	// ClientID, ClientSecret and PersonalKey override the seeded credentials.
	ClientID, ClientSecret, PersonalKey string
	// AutoApprove answers /app/oauth/authorize with an immediate redirect carrying a code,
	// instead of the consent page.
	AutoApprove bool
	// AccessTTL is expires_in of access tokens. Default 24h (Keap staff).
	AccessTTL time.Duration
	// RefreshTTL is the refresh-token lifetime. Default 45 days (Keap staff).
	RefreshTTL time.Duration
	// HookDelay is how long a change waits before its first delivery attempt; changes arriving
	// meanwhile join the same batch. Keap: 30-60 s. Default 0 (next dispatcher tick).
	HookDelay time.Duration
	// TagHookDelay replaces HookDelay for contactGroup.applied and contactGroup.delete, which
	// Keap first sends after 5-10 minutes. Default: HookDelay.
	TagHookDelay time.Duration
	// RetryBackoff is the wait before delivery attempts 2, 3 and 4 (Keap: 30-60 s, 5 min,
	// 30 min). Its length plus one is the number of attempts. Default: Keap's, with 60 s.
	RetryBackoff []time.Duration
	// DeliveryTimeout is how long a receiver may take to answer (Keap: 30 s).
	DeliveryTimeout time.Duration
	// AllowRemoteHooks permits hook URLs on non-loopback hosts. Off by default so tests and
	// demos never send traffic off the machine.
	AllowRemoteHooks bool
	// Limits are the throttle and quota limits. Zero fields take Keap's values.
	Limits Limits
	// Unthrottled disables throttling and quotas (headers are still sent). For benchmarks.
	Unthrottled bool
	// RequestLogSize bounds the request log. Default 10000.
	RequestLogSize int
	// Profile picks among Keap behaviours the documents leave open; the zero value follows the
	// documents. See profile.go.
	Profile Profile
	// DispatchInterval is how often the hook dispatcher looks for due batches on the wall
	// clock; advancing the sandbox clock also wakes it. Default 10 ms.
	DispatchInterval time.Duration
}

// KeapRetryBackoff is Keap's wait before delivery attempts 2, 3 and 4 (FACTS.md §6; the
// 30-60 s window is taken at 60 s).
var KeapRetryBackoff = []time.Duration{60 * time.Second, 5 * time.Minute, 30 * time.Minute}

// ScaledBackoff returns Keap's retry schedule scaled by f, e.g. 0.001 for tests.
func ScaledBackoff(f float64) []time.Duration {
	out := make([]time.Duration, len(KeapRetryBackoff))
	for i, d := range KeapRetryBackoff {
		out[i] = time.Duration(float64(d) * f)
	}
	return out
}

// Limits are Keap's throttles (FACTS.md §2). Per-minute windows are rolling.
type Limits struct {
	OAuthPerSecond                int // per client id spike policy: 25 (no headers report it)
	OAuthPerMinute, OAuthPerDay   int // per client id: 1500, 150000
	KeyPerSecond, KeyPerMinute    int // per personal key: 10, 240
	KeyPerDay                     int // 30000
	TenantPerMinute, TenantPerDay int // all credentials: 10000, 250000
}

func (l Limits) withDefaults() Limits {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&l.OAuthPerSecond, 25)
	def(&l.OAuthPerMinute, 1500)
	def(&l.OAuthPerDay, 150000)
	def(&l.KeyPerSecond, 10)
	def(&l.KeyPerMinute, 240)
	def(&l.KeyPerDay, 30000)
	def(&l.TenantPerMinute, 10000)
	def(&l.TenantPerDay, 250000)
	return l
}

func (o Options) withDefaults() Options {
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	if o.Clock == nil {
		o.Clock = wallClock{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Tenant == "" {
		o.Tenant = "ks001.infusionsoft.com"
	}
	if o.AccessTTL == 0 {
		o.AccessTTL = 24 * time.Hour
	}
	if o.RefreshTTL == 0 {
		o.RefreshTTL = 45 * 24 * time.Hour
	}
	if o.TagHookDelay == 0 {
		o.TagHookDelay = o.HookDelay
	}
	if o.RetryBackoff == nil {
		o.RetryBackoff = KeapRetryBackoff
	}
	if o.DeliveryTimeout == 0 {
		o.DeliveryTimeout = 30 * time.Second
	}
	if o.RequestLogSize == 0 {
		o.RequestLogSize = 10000
	}
	if o.DispatchInterval == 0 {
		o.DispatchInterval = 10 * time.Millisecond
	}
	o.Limits = o.Limits.withDefaults()
	return o
}

// Validate reports options that cannot work.
func (o Options) Validate() error {
	var errs []error
	if o.Contacts < 0 {
		errs = append(errs, fmt.Errorf("contacts: %d is negative", o.Contacts))
	}
	if o.HookDelay < 0 || o.TagHookDelay < 0 || o.AccessTTL < 0 || o.RefreshTTL < 0 || o.DeliveryTimeout < 0 {
		errs = append(errs, errors.New("durations must not be negative"))
	}
	for _, d := range o.RetryBackoff {
		if d < 0 {
			errs = append(errs, errors.New("retry backoff: negative duration"))
		}
	}
	if err := checkLoopbackAddr(o.Addr); o.Addr != "" && err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
