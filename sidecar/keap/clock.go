package keap

import "time"

// Clock tells the time and waits. The limiter, the backoff and the quota pauses read only this
// clock, so tests move time instead of sleeping. After must fire no earlier than d from Now.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type wallClock struct{}

func (wallClock) Now() time.Time                         { return time.Now() }
func (wallClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// WallClock is the real clock, the default.
func WallClock() Clock { return wallClock{} }
