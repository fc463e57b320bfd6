package dashboard

import (
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/keapsync/keapsync/sidecar/accountstate"
	"github.com/keapsync/keapsync/sidecar/httpguard"
)

// DemoUserID is the admin user supabase/seed.sql creates; local mode signs in as this user unless
// Config.LocalUserID says otherwise.
const DemoUserID = "00000000-0000-4000-8000-00000000a11c"

// Config of a dashboard. The zero value plus Local (or SupabaseURL and AnonKey) is usable.
type Config struct {
	Listen string // KEAPSYNC_DASHBOARD_LISTEN, default 127.0.0.1:8090

	// Supabase Auth. With SupabaseURL set, people sign in through GoTrue and tokens are verified
	// with the project's JWKS (ES256/RS256) or, if set, the legacy HS256 JWTSecret.
	SupabaseURL string // SUPABASE_URL, e.g. https://<ref>.supabase.co
	AnonKey     string // SUPABASE_ANON_KEY (public: it is also handed to the browser for Realtime)
	JWTSecret   string // SUPABASE_JWT_SECRET (legacy HS256); in local mode the signing secret

	// Local mode (`keapsync demo`, no Supabase Auth): a "sign in" button mints an HS256 token for
	// LocalUserID. Refused when SupabaseURL is set so it can never shadow real auth.
	Local       bool
	LocalUserID string // default DemoUserID

	// PublicURL is how browsers reach the dashboard (magic-link redirects, Secure cookies when
	// https). Default http://<Listen>.
	PublicURL string

	// RefreshBefore: a session whose access token expires sooner than this is refreshed on the
	// next request. Default 5 minutes.
	RefreshBefore time.Duration
	// PageSize of the data tables. Default 50.
	PageSize int

	// APICORSOrigins may call the JSON API (/api/v1/) from a browser, e.g.
	// "https://app.example.com". None by default: browsers then refuse other sites' scripts.
	APICORSOrigins []string // KEAPSYNC_API_CORS_ORIGINS, comma-separated

	// HTTP: timeouts and the cap on slow bodies of Run and Serve (httpguard defaults).
	HTTP httpguard.Config

	// Stalls: when waiting work counts as stalled on Sync health (serve passes its own
	// KEAPSYNC_STALL_AFTER; accountstate defaults otherwise).
	Stalls accountstate.Thresholds

	Log *slog.Logger     // default slog.Default()
	Now func() time.Time // default time.Now; tests inject a clock
}

// DefaultConfig is the config `keapsync dashboard` starts from.
func DefaultConfig() Config {
	return Config{Listen: "127.0.0.1:8090", RefreshBefore: 5 * time.Minute, PageSize: 50}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Listen == "" {
		c.Listen = d.Listen
	}
	if c.RefreshBefore == 0 {
		c.RefreshBefore = d.RefreshBefore
	}
	if c.PageSize == 0 {
		c.PageSize = d.PageSize
	}
	if c.LocalUserID == "" {
		c.LocalUserID = DemoUserID
	}
	if c.PublicURL == "" {
		c.PublicURL = "http://" + c.Listen
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	c.SupabaseURL = strings.TrimRight(c.SupabaseURL, "/")
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate says what is wrong with the config, naming the environment variable to fix.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if c.Local && c.SupabaseURL != "" {
		errs = append(errs, errors.New("local mode refuses to start while SUPABASE_URL is set: unset it or drop --local"))
	}
	if !c.Local {
		if c.SupabaseURL == "" {
			errs = append(errs, errors.New("SUPABASE_URL is required (or --local for the demo)"))
		} else if u, err := url.Parse(c.SupabaseURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			errs = append(errs, fmt.Errorf("SUPABASE_URL: not an http(s) URL: %q", c.SupabaseURL))
		}
		if c.AnonKey == "" && c.SupabaseURL != "" {
			errs = append(errs, errors.New("SUPABASE_ANON_KEY is required with SUPABASE_URL"))
		}
	}
	if c.JWTSecret != "" && len(c.JWTSecret) < 32 {
		errs = append(errs, errors.New("SUPABASE_JWT_SECRET: at least 32 characters"))
	}
	if u, err := url.Parse(c.PublicURL); err != nil || u.Host == "" {
		errs = append(errs, fmt.Errorf("public URL: not a URL: %q", c.PublicURL))
	}
	if c.PageSize < 1 || c.PageSize > 1000 {
		errs = append(errs, fmt.Errorf("page size %d: want 1..1000", c.PageSize))
	}
	for _, o := range c.APICORSOrigins {
		if u, err := url.Parse(o); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" ||
			(u.Path != "" || u.RawQuery != "" || u.User != nil) {
			errs = append(errs, fmt.Errorf("KEAPSYNC_API_CORS_ORIGINS: %q is not an origin (scheme://host[:port], no path)", o))
		}
	}
	if c.RefreshBefore < 0 {
		errs = append(errs, errors.New("refresh-before must not be negative"))
	}
	return errors.Join(errs...)
}

// issuer is the `iss` every accepted token must carry.
func (c Config) issuer() string {
	if c.Local {
		return localIssuer
	}
	return c.SupabaseURL + "/auth/v1"
}

// secure reports whether cookies must be Secure: whenever browsers reach us over https.
func (c Config) secure() bool { return strings.HasPrefix(c.PublicURL, "https://") }

// localSecret is the HS256 key of local mode: the configured secret, else a random one per
// process (sessions then end with the process, which is fine for a demo).
func (c Config) localSecret() []byte {
	if c.JWTSecret != "" {
		return []byte(c.JWTSecret)
	}
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return b
}
