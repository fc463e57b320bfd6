// Package httpguard sets up keapsync's HTTP servers for a listener strangers can reach: read,
// write and idle timeouts, and a cap on requests whose bodies are still arriving, so slow or
// idle clients cannot hold connections and goroutines without end.
package httpguard

import (
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// Config of a guarded server. The zero value gets the defaults.
type Config struct {
	ReadHeaderTimeout time.Duration // request line and headers (default 10 s)
	ReadTimeout       time.Duration // the whole request, body included (default 30 s)
	WriteTimeout      time.Duration // from the end of the headers to the end of the answer (default 60 s)
	IdleTimeout       time.Duration // a keep-alive connection waiting for its next request (default 60 s)
	// MaxBodies caps requests with a body being served at once, from all clients (default 256);
	// MaxBodiesPerIP from one client address (default 32). Over the cap a request is answered
	// 503 with Retry-After, before its body is read. Behind a reverse proxy every client has the
	// proxy's address, so the per-address cap acts as a second global one.
	MaxBodies      int
	MaxBodiesPerIP int
	Log            *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.ReadHeaderTimeout == 0 {
		c.ReadHeaderTimeout = 10 * time.Second
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = 30 * time.Second
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = time.Minute
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = time.Minute
	}
	if c.MaxBodies == 0 {
		c.MaxBodies = 256
	}
	if c.MaxBodiesPerIP == 0 {
		c.MaxBodiesPerIP = 32
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return c
}

// Server returns an http.Server for h with the timeouts and the body cap applied. Set its
// BaseContext and the like as usual.
func (c Config) Server(h http.Handler) *http.Server {
	c = c.withDefaults()
	return &http.Server{
		Handler:           c.limitBodies(h),
		ReadHeaderTimeout: c.ReadHeaderTimeout,
		ReadTimeout:       c.ReadTimeout,
		WriteTimeout:      c.WriteTimeout,
		IdleTimeout:       c.IdleTimeout,
	}
}

// Stream frees a long answer (an event stream, a large export) from the server's timeouts: the
// read deadline is lifted (net/http would otherwise cancel the request's context when it passes)
// and the answer may be written until now+d.
func Stream(w http.ResponseWriter, d time.Duration) error {
	rc := http.NewResponseController(w)
	if err := rc.SetReadDeadline(time.Time{}); err != nil {
		return err
	}
	return rc.SetWriteDeadline(time.Now().Add(d))
}

// bodies counts requests with a body in flight, overall and per client address.
type bodies struct {
	mu       sync.Mutex
	total    int
	perIP    map[string]int
	max, per int
}

func (b *bodies) acquire(ip string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.total >= b.max || b.perIP[ip] >= b.per {
		return false
	}
	b.total++
	b.perIP[ip]++
	return true
}

func (b *bodies) release(ip string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.total--
	if b.perIP[ip]--; b.perIP[ip] <= 0 {
		delete(b.perIP, ip)
	}
}

func (c Config) limitBodies(h http.Handler) http.Handler {
	b := &bodies{perIP: map[string]int{}, max: c.MaxBodies, per: c.MaxBodiesPerIP}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength == 0 {
			h.ServeHTTP(w, r)
			return
		}
		ip, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			ip = r.RemoteAddr
		}
		if !b.acquire(ip) {
			c.Log.Info("too many request bodies arriving at once; refused one", "remote", ip, "path", r.URL.Path)
			// Close rather than drain the unread body (which is what a slow client would want).
			w.Header().Set("Connection", "close")
			w.Header().Set("Retry-After", "5")
			http.Error(w, "too many requests in flight; retry later", http.StatusServiceUnavailable)
			return
		}
		defer b.release(ip)
		h.ServeHTTP(w, r)
	})
}
