package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Report is what a soak found. OK is the verdict; everything else explains it.
type Report struct {
	Cfg                      Config
	Dir                      string // logs of the serve processes (kept when the soak fails)
	Faults                   []string
	KillsLanded              map[string]int // where each SIGKILL landed: mid-backfill, mid-refresh, mid-push, mid-read, idle
	MissedKills              []string       // deliberate kills that found nothing to land on (coverage lost)
	Ops                      map[string]int
	Writes                   int
	KeapContacts, PGContacts int
	KeapOrders, PGOrders     int
	Reconcile                string
	QuiesceErr               string
	HarnessErr               string // the soak could not finish; no verdict on the engine

	Divergent   []string
	Trails      []string // how each divergent field came apart, event by event
	Parked      []string // divergent fields parked as open manual conflicts (allowed)
	Duplicates  []string
	LostUpdates []string
	Resurrected []string
	Echoes      []string
	DeadLetters []string
	Refused     []string // local orders Keap refused because their contact is gone (dead-lettered, by design)
	Stuck       []string // where serve goroutines waited when the system would not quiesce
	EngineBugs  []string // bugs recognised by their symptoms

	WriteCalls                          int
	BothWroteKeapWon, BothWroteLocalWon int
	Conflicts                           map[string]int // by status/resolution
	// Rereads counts the fresh reads of contacts queued because a version tied with the stored
	// one (same stamp, other content) and was asked for before it was applied (keapsync.set_asked_at).
	Rereads int
	Serves  []string
	Elapsed time.Duration
}

// OK is the verdict: converged, nothing lost, duplicated, resurrected or echoed.
func (r *Report) OK() bool {
	return r.HarnessErr == "" && r.QuiesceErr == "" && len(r.MissedKills) == 0 && len(r.EngineBugs) == 0 && len(r.Divergent) == 0 && len(r.Duplicates) == 0 && len(r.LostUpdates) == 0 &&
		len(r.Resurrected) == 0 && len(r.Echoes) == 0
}

// Print writes the report for a person.
func (r *Report) Print(out io.Writer) {
	verdict := "PASS"
	if !r.OK() {
		verdict = "FAIL"
	}
	fmt.Fprintf(out, "chaos soak %s: seed %d, duration %s, %d contacts, %g ops/s per actor, %s wall\n",
		verdict, r.Cfg.Seed, r.Cfg.Duration, r.Cfg.Contacts, r.Cfg.Rate, r.Elapsed.Round(time.Second))
	fmt.Fprintf(out, "faults:\n")
	for _, f := range r.Faults {
		fmt.Fprintf(out, "  %s\n", f)
	}
	fmt.Fprintf(out, "SIGKILLs landed: %s\n", mapLine(r.KillsLanded))
	fmt.Fprintf(out, "serves: %s\n", strings.Join(r.Serves, "; "))
	fmt.Fprintf(out, "operations: %s (%d field writes)\n", mapLine(r.Ops), r.Writes)
	fmt.Fprintf(out, "final: %d contacts and %d orders in Keap, %d and %d in Postgres; reconcile: %s\n",
		r.KeapContacts, r.KeapOrders, r.PGContacts, r.PGOrders, r.Reconcile)
	fmt.Fprintf(out, "conflicts: %s; fields both actors wrote: Keap's last write won %d, local's %d\n",
		mapLine(r.Conflicts), r.BothWroteKeapWon, r.BothWroteLocalWon)
	fmt.Fprintf(out, "write calls to Keap contacts and orders during the soak: %d\n", r.WriteCalls)
	fmt.Fprintf(out, "contacts read again to settle an equal-stamp tie: %d\n", r.Rereads)
	if r.HarnessErr != "" {
		fmt.Fprintf(out, "harness error: %s\n", r.HarnessErr)
	}
	if r.QuiesceErr != "" {
		fmt.Fprintf(out, "quiescence: %s\n", r.QuiesceErr)
	}
	if len(r.Stuck) > 0 {
		section(out, "serve goroutines when quiescence timed out", r.Stuck)
	}
	section(out, "deliberate kills that did not land (goal 0)", r.MissedKills)
	section(out, "engine bugs recognised (goal 0)", r.EngineBugs)
	section(out, "divergent fields (goal 0)", r.Divergent)
	if len(r.Trails) > 0 {
		fmt.Fprintf(out, "how they came apart:\n  %s\n", strings.Join(r.Trails, "\n  "))
	}
	section(out, "parked as open manual conflicts", r.Parked)
	section(out, "duplicates: contacts by email, orders by title (goal 0)", r.Duplicates)
	section(out, "lost updates (goal 0)", r.LostUpdates)
	section(out, "deletes undone (goal 0)", r.Resurrected)
	section(out, "echo calls (goal 0)", r.Echoes)
	section(out, "dead letters", r.DeadLetters)
	section(out, "local orders Keap refused, their contact being gone (dead-lettered by design)", r.Refused)
	if !r.OK() {
		fmt.Fprintf(out, "serve logs: %s\nreproduce with: %s\n", r.Dir, r.Cfg.Command())
	}
}

func section(out io.Writer, title string, lines []string) {
	fmt.Fprintf(out, "%s: %d\n", title, len(lines))
	for i, l := range lines {
		if i == 40 {
			fmt.Fprintf(out, "  … %d more\n", len(lines)-i)
			break
		}
		fmt.Fprintf(out, "  %s\n", l)
	}
}

func mapLine(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for _, k := range sortedKeys(m) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func sortedKeys[K cmp.Ordered, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func unionKeys(a, b fields) []string {
	m := map[string]bool{}
	for k := range a {
		m[k] = true
	}
	for k := range b {
		m[k] = true
	}
	return sortedKeys(m)
}

// sqlRereads counts contact rechecks in the inbox: contacts name no record that could be ahead
// of them here, so each is an equal-stamp tie apply_keap_record would not settle alone.
const sqlRereads = `
select count(*) from keapsync.webhook_inbox where account_id = $1 and event_key = 'contact.recheck'`

const sqlConflicts = `
select local_id, field, status, coalesce(resolution, '') from keapsync.conflicts
 where account_id = $1 and object_type = 'contact'`

// openConflicts returns the fields parked as open conflicts ("localID/field") and counts every
// conflict by how it ended, for the report.
func (w *world) openConflicts(ctx context.Context, rep *Report) (map[string]bool, error) {
	rows, err := w.pool.Query(ctx, sqlConflicts, w.account)
	if err != nil {
		return nil, fmt.Errorf("read conflicts: %w", err)
	}
	defer rows.Close()
	open := map[string]bool{}
	rep.Conflicts = map[string]int{}
	for rows.Next() {
		var local int64
		var field, status, resolution string
		if err := rows.Scan(&local, &field, &status, &resolution); err != nil {
			return nil, fmt.Errorf("read conflicts: %w", err)
		}
		if status == "open" {
			open[fmt.Sprintf("%d/%s", local, field)] = true
		}
		rep.Conflicts[strings.TrimSuffix(status+" "+resolution, " ")]++
	}
	return open, rows.Err()
}

const sqlHistoryKeapIDs = `
select distinct row_id, keap_id from keapsync.change_history
 where account_id = $1 and table_name = $2 and keap_id is not null`

// historyKeapIDs maps local ids of a keap.* table to the Keap ids they ever had, from the change
// history, so a record created here, pushed and then deleted can still be named by its Keap id.
func (w *world) historyKeapIDs(ctx context.Context, table string) (map[int64]int64, error) {
	rows, err := w.pool.Query(ctx, sqlHistoryKeapIDs, w.account, table)
	if err != nil {
		return nil, fmt.Errorf("read history: %w", err)
	}
	defer rows.Close()
	out := map[int64]int64{}
	for rows.Next() {
		var l, k int64
		if err := rows.Scan(&l, &k); err != nil {
			return nil, fmt.Errorf("read history: %w", err)
		}
		out[l] = k
	}
	return out, rows.Err()
}

const sqlDeadLetters = `
select source, object_type, coalesce(keap_id, 0), coalesce(local_id, 0), status, attempts, coalesce(http_status, 0), error
  from keapsync.dead_letters where account_id = $1 order by id`

// deadLetters lists the dead letters for the report and returns Keap's message for each parked
// record, keyed "type/local id".
func (w *world) deadLetters(ctx context.Context, rep *Report) (map[string]string, error) {
	rows, err := w.pool.Query(ctx, sqlDeadLetters, w.account)
	if err != nil {
		return nil, fmt.Errorf("read dead letters: %w", err)
	}
	defer rows.Close()
	parked := map[string]string{}
	for rows.Next() {
		var source, typ, status, msg string
		var keapID, localID int64
		var attempts, httpStatus int
		if err := rows.Scan(&source, &typ, &keapID, &localID, &status, &attempts, &httpStatus, &msg); err != nil {
			return nil, fmt.Errorf("read dead letters: %w", err)
		}
		rep.DeadLetters = append(rep.DeadLetters, fmt.Sprintf("%s %s keap %d local %d: %s after %d attempts, HTTP %d: %.200s",
			source, typ, keapID, localID, status, attempts, httpStatus, msg))
		parked[fmt.Sprintf("%s/%d", typ, localID)] = msg
	}
	return parked, rows.Err()
}

func (w *world) serveSummary() []string {
	var out []string
	for _, s := range w.serves {
		s.mu.Lock()
		out = append(out, fmt.Sprintf("%s started %d times, SIGKILLed %d", s.name, s.starts, s.kills))
		s.mu.Unlock()
	}
	return out
}
