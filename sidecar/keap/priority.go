package keap

import (
	"container/heap"
	"context"
)

// Priority orders calls waiting on a budget: all waiting Live calls go before any Background
// call (law 7: live before backfill).
type Priority int

const (
	// Background is for backfill and reconcile: it yields to Live calls and stops early when
	// the daily quota runs low, leaving the rest to live sync.
	Background Priority = iota
	// Live is for hook-driven fetches and pushes; it is the default.
	Live
)

func (p Priority) String() string {
	if p == Background {
		return "background"
	}
	return "live"
}

type priorityKey struct{}

// WithPriority marks calls made with ctx.
func WithPriority(ctx context.Context, p Priority) context.Context {
	return context.WithValue(ctx, priorityKey{}, p)
}

// PriorityFrom returns the priority of ctx (Live unless marked).
func PriorityFrom(ctx context.Context) Priority {
	if p, ok := ctx.Value(priorityKey{}).(Priority); ok {
		return p
	}
	return Live
}

type flowKey struct{}

// withFlow names the flow calls made with ctx belong to (a Client names its Keap account's), for
// fair queuing on a budget several flows share.
func withFlow(ctx context.Context, flow any) context.Context {
	if ctx.Value(flowKey{}) != nil {
		return ctx
	}
	return context.WithValue(ctx, flowKey{}, flow)
}

// waiter is one call queued on a budget. Only the head of the queue draws tokens, so order is
// exactly priority, then fair turn among flows, then arrival, and a Background call never
// holds a token a Live call needs.
type waiter struct {
	prio  Priority
	flow  any
	tag   uint64 // the flow's turn (start-time fair queuing): see Budget.enqueue
	seq   uint64
	index int
	wake  chan struct{} // buffered 1: "look again", never blocks the sender
}

func (w *waiter) poke() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

type waitQueue []*waiter

func (q waitQueue) Len() int { return len(q) }
func (q waitQueue) Less(i, j int) bool {
	if q[i].prio != q[j].prio {
		return q[i].prio > q[j].prio
	}
	if q[i].tag != q[j].tag {
		return q[i].tag < q[j].tag
	}
	return q[i].seq < q[j].seq
}
func (q waitQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index, q[j].index = i, j
}
func (q *waitQueue) Push(x any) {
	w := x.(*waiter)
	w.index = len(*q)
	*q = append(*q, w)
}
func (q *waitQueue) Pop() any {
	old := *q
	w := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	w.index = -1
	return w
}

func (q *waitQueue) head() *waiter {
	if len(*q) == 0 {
		return nil
	}
	return (*q)[0]
}

// add queues w and pokes the previous head if w displaced it, so it stops waiting on the clock.
func (q *waitQueue) add(w *waiter) {
	prev := q.head()
	heap.Push(q, w)
	if prev != nil && q.head() == w {
		prev.poke()
	}
}

// remove takes w out and pokes the new head.
func (q *waitQueue) remove(w *waiter) {
	if w.index < 0 {
		return
	}
	wasHead := w.index == 0
	heap.Remove(q, w.index)
	if h := q.head(); wasHead && h != nil {
		h.poke()
	}
}
