package main

import (
	"slices"
	"sync"
	"time"
)

// write is one accepted edit of one field by one actor. Fields are doc keys like the engine's:
// given_name, family_name, job_title, email, phone, custom_fields.<id>, tag.<keap tag id>; a
// value of "" means absent (a tag not applied).
type write struct {
	Side      string // sideKeap or sideLocal
	Ref       string // kNNN: a Keap id; lNNN: a local id of a contact the local actor created
	Field     string
	Value     string
	At        time.Time // harness wall clock; each actor is one goroutine, so per-side order is exact
	Uncertain bool      // the statement failed in a way that may have committed (Postgres went away)
}

const (
	sideKeap  = "keap"
	sideLocal = "local"
)

// orderOp is one order an actor created or deleted. Orders change no other way: Keap's v1 has
// no order update, and payments are Keap's alone (the checker compares their totals directly).
type orderOp struct {
	Side      string
	Op        string // create or delete
	Ref       string // kNNN: a Keap order id; lNNN: a local id; "l?" an insert whose outcome is unknown
	Title     string // creates: unique per write, so a record is found by it on either side
	Contact   int64  // creates: the contact's Keap id
	Uncertain bool   // the statement failed in a way that may have committed
}

// ledger records what both actors did, for the lost-update and resurrection checks.
type ledger struct {
	mu      sync.Mutex
	writes  []write
	orders  []orderOp
	deleted map[string]string   // ref -> side that deleted it
	emails  map[string][]string // ref -> every email it was given, to spot a resurrected contact
	ops     map[string]int      // "side/op" -> count, for the report
}

func newLedger() *ledger {
	return &ledger{deleted: map[string]string{}, emails: map[string][]string{}, ops: map[string]int{}}
}

func (l *ledger) record(side, ref string, uncertain bool, fields map[string]string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		l.writes = append(l.writes, write{Side: side, Ref: ref, Field: k, Value: fields[k], At: now, Uncertain: uncertain})
		if k == "email" {
			l.emails[ref] = append(l.emails[ref], fields[k])
		}
	}
}

func (l *ledger) delete(side, ref string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.deleted[ref]; !ok {
		l.deleted[ref] = side
	}
}

func (l *ledger) order(op orderOp) {
	l.mu.Lock()
	l.orders = append(l.orders, op)
	l.mu.Unlock()
}

func (l *ledger) orderOps() []orderOp {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.orders)
}

func (l *ledger) count(side, op string) {
	l.mu.Lock()
	l.ops[side+"/"+op]++
	l.mu.Unlock()
}

func (l *ledger) snapshot() (ws []write, deleted map[string]string, emails map[string][]string, ops map[string]int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	deleted, emails, ops = map[string]string{}, map[string][]string{}, map[string]int{}
	for k, v := range l.deleted {
		deleted[k] = v
	}
	for k, v := range l.emails {
		emails[k] = slices.Clone(v)
	}
	for k, v := range l.ops {
		ops[k] = v
	}
	return slices.Clone(l.writes), deleted, emails, ops
}
