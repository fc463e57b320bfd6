package sandbox

import (
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// window is a rolling window of request times (Keap's per-minute throttle rolls; FACTS.md §2).
type window struct{ times []time.Time }

func (w *window) count(now time.Time, span time.Duration) int {
	cut := 0
	for cut < len(w.times) && !w.times[cut].After(now.Add(-span)) {
		cut++
	}
	w.times = w.times[cut:]
	return len(w.times)
}

// daily counts requests per UTC day; quotas reset at 00:00 UTC.
type daily struct {
	day  time.Time
	used int
}

func (d *daily) count(now time.Time) int {
	if day := now.UTC().Truncate(24 * time.Hour); !day.Equal(d.day) {
		d.day, d.used = day, 0
	}
	return d.used
}

// limiter enforces Keap's throttles per credential and per tenant and computes the
// x-keap-* headers Keap sends on every response.
type limiter struct {
	mu       sync.Mutex
	clock    Clock
	limits   Limits
	disabled bool
	tenant   string

	minute, second map[credential]*window
	day            map[credential]*daily
	tenantMinute   window
	tenantDay      daily
}

func newLimiter(clock Clock, limits Limits, disabled bool, tenant string) *limiter {
	return &limiter{clock: clock, limits: limits, disabled: disabled, tenant: tenant,
		minute: map[credential]*window{}, second: map[credential]*window{}, day: map[credential]*daily{}}
}

// take counts one request for c and writes the headers. A refused request is not counted.
// It returns the 429 to send, or nil. storm refuses regardless of budget (fault injection).
func (l *limiter) take(c credential, h http.Header, storm bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.clock.Now()
	perMin, perDay, perSec := l.limits.OAuthPerMinute, l.limits.OAuthPerDay, l.limits.OAuthPerSecond
	if c.kind == "key" {
		perMin, perDay, perSec = l.limits.KeyPerMinute, l.limits.KeyPerDay, l.limits.KeyPerSecond
	}
	for _, m := range []map[credential]*window{l.minute, l.second} {
		if m[c] == nil {
			m[c] = &window{}
		}
	}
	if l.day[c] == nil {
		l.day[c] = &daily{}
	}
	minUsed, dayUsed := l.minute[c].count(now, time.Minute), l.day[c].count(now)
	secUsed := l.second[c].count(now, time.Second)
	tMin, tDay := l.tenantMinute.count(now, time.Minute), l.tenantDay.count(now)

	var refused error
	if storm {
		refused = quotaViolation(c)
	} else if !l.disabled {
		switch {
		case minUsed >= perMin || dayUsed >= perDay || tMin >= l.limits.TenantPerMinute || tDay >= l.limits.TenantPerDay:
			refused = quotaViolation(c)
		case perSec > 0 && secUsed >= perSec:
			refused = spikeViolation(perSec)
		}
	}
	if refused == nil {
		l.minute[c].times = append(l.minute[c].times, now)
		l.second[c].times = append(l.second[c].times, now)
		l.tenantMinute.times = append(l.tenantMinute.times, now)
		l.day[c].used++
		l.tenantDay.used++
		minUsed, dayUsed, tMin, tDay = minUsed+1, dayUsed+1, tMin+1, tDay+1
	}
	itoa := strconv.Itoa
	midnight := now.UTC().Truncate(24 * time.Hour).Add(24 * time.Hour)
	set := func(k, v string) { h[k] = []string{v} } // lower-case names exactly as Keap sends them
	set("x-keap-product-quota-limit", itoa(perDay))
	set("x-keap-product-quota-time-unit", "day")
	set("x-keap-product-quota-interval", "1")
	set("x-keap-product-quota-used", itoa(dayUsed))
	set("x-keap-product-quota-available", itoa(max(0, perDay-dayUsed)))
	set("x-keap-product-quota-expiry-time", strconv.FormatInt(midnight.UnixMilli(), 10))
	set("x-keap-product-throttle-limit", itoa(perMin))
	set("x-keap-product-throttle-time-unit", "minute")
	set("x-keap-product-throttle-interval", "1")
	set("x-keap-product-throttle-used", itoa(minUsed))
	set("x-keap-product-throttle-available", itoa(max(0, perMin-minUsed)))
	if c.kind == "key" { // seen on keys; Keap says it returns no metrics for the OAuth spike policy
		set("x-keap-product-spike-limit", itoa(perSec)+"ps")
	}
	l.tenantHeaders(h, tMin, tDay)
	return refused
}

// tenantHeaders carries both tenant windows pipe-delimited, as observed in 2026 (FACTS.md §2).
func (l *limiter) tenantHeaders(h http.Header, tMin, tDay int) {
	lm, ld := l.limits.TenantPerMinute, l.limits.TenantPerDay
	set := func(k, v string) { h[k] = []string{v} }
	set("x-keap-tenant-id", l.tenant)
	set("x-keap-tenant-throttle-limit", fmt.Sprintf("%d|%d", lm, ld))
	set("x-keap-tenant-throttle-time-unit", "minute|day")
	set("x-keap-tenant-throttle-interval", "1|1")
	set("x-keap-tenant-throttle-used", fmt.Sprintf("%d|%d", tMin, tDay))
	set("x-keap-tenant-throttle-available", fmt.Sprintf("%d|%d", max(0, lm-tMin), max(0, ld-tDay)))
}

// tenantOnly writes the tenant headers on responses that no credential paid for (401s).
func (l *limiter) tenantOnly(h http.Header) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.clock.Now()
	l.tenantHeaders(h, l.tenantMinute.count(now, time.Minute), l.tenantDay.count(now))
}

// quotaViolation is the Apigee-era 429 body Keap announced (FACTS.md §2). The identifier is
// the client id, or a masked key: secrets never leave in error bodies.
func quotaViolation(c credential) error {
	id := c.id
	if c.kind == "key" {
		id = maskKey(c.id)
	}
	return fault(http.StatusTooManyRequests, "Rate limit quota violation. Quota limit exceeded. Identifier : "+id,
		"policies.ratelimit.QuotaViolation")
}

func spikeViolation(perSec int) error {
	return fault(http.StatusTooManyRequests,
		fmt.Sprintf("Spike arrest violation. Allowed rate : MessageRate{messagesPerPeriod=%d, periodInMicroseconds=1000000, maxBurstMessageCount=1.0}", perSec),
		"policies.ratelimit.SpikeArrestViolation")
}

func maskKey(k string) string {
	if len(k) <= 10 {
		return "****"
	}
	return k[:10] + "****"
}
