package keap

import "time"

// Clock tells the time and waits. The limiter, the backoff and the quota pauses read only this
// clock, so tests move time instead of sleeping.
type Clock interface {
	Now() time.Time
	// Timer fires once on its channel, no earlier than d from Now. The caller calls stop once
	// it has woken, fired or not: a fake clock that jumps to its earliest timer must not jump
	// to one nobody waits for (a budget waiter woken early sleeps again on a new one), nor
	// while a waiter its last timer woke has not yet acted on it.
	Timer(d time.Duration) (c <-chan time.Time, stop func())
}

type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

func (wallClock) Timer(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTimer(d)
	return t.C, func() { t.Stop() }
}

// WallClock is the real clock, the default.
func WallClock() Clock { return wallClock{} }
