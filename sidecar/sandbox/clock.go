package sandbox

import (
	"sync"
	"time"
)

// Clock tells the time. Everything with time in it (token expiry, throttle windows, hook delays
// and retries, record timestamps) reads this clock, so tests move time instead of sleeping.
type Clock interface {
	Now() time.Time
}

type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

// ManualClock is a Clock that only moves when told to. The zero value starts at
// 2026-01-01T00:00:00Z.
type ManualClock struct {
	mu  sync.Mutex
	now time.Time
}

// NewManualClock returns a clock stopped at t.
func NewManualClock(t time.Time) *ManualClock { return &ManualClock{now: t} }

// Now implements Clock.
func (c *ManualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.now.IsZero() {
		c.now = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	return c.now
}

// Advance moves the clock forward by d.
func (c *ManualClock) Advance(d time.Duration) {
	c.Now() // settle the zero value
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// skewClock adds an offset to a base clock. The server wraps every clock in one so that
// /_sandbox/clock/advance works whichever clock the caller injected.
type skewClock struct {
	base   Clock
	mu     sync.Mutex
	offset time.Duration
}

func (c *skewClock) Now() time.Time {
	c.mu.Lock()
	off := c.offset
	c.mu.Unlock()
	return c.base.Now().Add(off).UTC()
}

func (c *skewClock) advance(d time.Duration) {
	c.mu.Lock()
	c.offset += d
	c.mu.Unlock()
}

// stamper hands out record timestamps: millisecond precision, UTC, and strictly increasing
// across all changes, so two changes never share a last_updated even when the clock stands
// still (a stamp may then run a few milliseconds ahead of the clock). Under the SecondStamps
// profile stamps are whole seconds and only never decrease: changes within one second share
// their stamp, as they would if Keap stored seconds (FACTS §7 leaves it open).
type stamper struct {
	clock   Clock
	profile *profileState
	mu      sync.Mutex
	last    time.Time
}

func (s *stamper) next() time.Time {
	seconds := s.profile != nil && s.profile.get().SecondStamps
	now := s.clock.Now().UTC().Truncate(time.Millisecond)
	if seconds {
		now = now.Truncate(time.Second)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case seconds && now.Before(s.last):
		now = s.last
	case !seconds && !now.After(s.last):
		now = s.last.Add(time.Millisecond)
	}
	s.last = now
	return now
}

// keapTime formats a timestamp the way Keap v1 does: ISO-8601, UTC, milliseconds.
func keapTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// parseKeapTime accepts what clients send in since/until: RFC 3339 with or without fraction.
func parseKeapTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, err
	}
	return t.UTC(), nil
}
