package sandbox

import (
	"net/http"
	"time"
)

// gateway does what Keap's API gateway does before a request reaches the application:
// authenticate (even unknown paths: FACTS.md §3), throttle, and, in the sandbox, inject faults.
type gateway struct {
	auth    *authority
	limiter *limiter
	faults  *faultState
	clock   Clock
	log     *requestLog
	next    http.Handler
}

func (g *gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sw := &statusWriter{ResponseWriter: w}
	start := time.Now()
	rec := RequestRecord{At: g.clock.Now(), Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery}
	defer func() {
		rec.Status, rec.Duration = sw.status, time.Since(start)
		g.log.add(rec)
	}()
	c, err := g.auth.authenticate(r)
	if err != nil {
		g.limiter.tenantOnly(sw.Header())
		writeError(sw, r, err)
		return
	}
	rec.Credential = c.kind
	if err := g.limiter.take(c, sw.Header(), g.faults.takeStorm()); err != nil {
		writeError(sw, r, err) // no Retry-After: Keap sends none (FACTS.md §2)
		return
	}
	f := g.faults.get()
	if f.retired(r) {
		writeError(sw, r, routeNotFound(r))
		return
	}
	if f.Latency > 0 {
		t := time.NewTimer(f.Latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	if g.faults.roll(func(f Faults) float64 { return f.ErrorRate }) {
		writeError(sw, r, v1Error(http.StatusInternalServerError, "Internal Server Error"))
		return
	}
	g.next.ServeHTTP(sw, r)
}

// logged records requests outside the gateway (/token, /app/oauth/authorize).
func logged(clock Clock, log *requestLog, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		start := time.Now()
		at := clock.Now()
		next.ServeHTTP(sw, r)
		log.add(RequestRecord{At: at, Method: r.Method, Path: r.URL.Path, Status: sw.status, Duration: time.Since(start)})
	})
}
