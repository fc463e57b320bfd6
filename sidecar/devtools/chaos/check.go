package main

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// check compares Keap and Postgres after quiescence and the reconcile pass, and judges the
// ledger of what the actors did against the result.
func (w *world) check(ctx context.Context, rep *Report, led *ledger, u universe, initial map[int64]fields, soakStart time.Time) error {
	keap, keapEmails := keapContacts(w.sb.Snapshot())
	pg, err := w.pgContacts(ctx)
	if err != nil {
		return err
	}
	open, err := w.openConflicts(ctx, rep)
	if err != nil {
		return err
	}
	if err := w.pool.QueryRow(ctx, sqlRereads, w.account).Scan(&rep.Rereads); err != nil {
		return fmt.Errorf("count re-reads: %w", err)
	}
	rep.KeapContacts, rep.PGContacts = len(keap), len(pg)

	// 1. Record by record, field by field.
	byKeap := map[int64]pgContact{}
	var divs []divergence
	localToKeap := map[int64]int64{}
	for _, c := range pg {
		localToKeap[c.localID] = c.keapID
		if c.keapID == 0 {
			rep.Divergent = append(rep.Divergent, fmt.Sprintf("local contact %d never reached Keap: %v", c.localID, c.f))
			continue
		}
		byKeap[c.keapID] = c
		if _, ok := keap[c.keapID]; !ok {
			rep.Divergent = append(rep.Divergent, fmt.Sprintf("contact %d (local %d) is in Postgres, not in Keap", c.keapID, c.localID))
		}
	}
	for _, id := range sortedKeys(keap) {
		row, ok := byKeap[id]
		if !ok {
			rep.Divergent = append(rep.Divergent, fmt.Sprintf("contact %d is in Keap, not in Postgres", id))
			continue
		}
		for _, k := range unionKeys(keap[id], row.f) {
			if kv, lv := keap[id][k], row.f[k]; kv != lv {
				if open[fmt.Sprintf("%d/%s", row.localID, k)] {
					rep.Parked = append(rep.Parked, fmt.Sprintf("contact %d %s: Keap %q, Postgres %q (open manual conflict)", id, k, kv, lv))
					continue
				}
				rep.Divergent = append(rep.Divergent, fmt.Sprintf("contact %d %s: Keap %q, Postgres %q", id, k, kv, lv))
				divs = append(divs, divergence{keapID: id, localID: row.localID, field: k})
			}
		}
	}

	// 2. Duplicates in Keap by email (any address, case-insensitive).
	owners := map[string][]int64{}
	for id, es := range keapEmails {
		for _, e := range es {
			owners[e] = append(owners[e], id)
		}
	}
	for e, ids := range owners {
		if len(ids) > 1 {
			slices.Sort(ids)
			rep.Duplicates = append(rep.Duplicates, fmt.Sprintf("%s: contacts %v", e, ids))
		}
	}
	// The same contact twice in Postgres (a Keap contact imported beside the local row that
	// created it) shows as two rows with one email.
	local := map[string][]string{}
	for _, c := range pg {
		if e := strings.ToLower(c.f["email"]); e != "" {
			local[e] = append(local[e], fmt.Sprintf("local %d (keap %d)", c.localID, c.keapID))
		}
	}
	for e, rows := range local {
		if len(rows) > 1 {
			rep.Duplicates = append(rep.Duplicates, fmt.Sprintf("%s in Postgres: %s", e, strings.Join(rows, ", ")))
		}
	}
	sort.Strings(rep.Duplicates)

	// 3. The ledger: lost updates, resurrected deletes.
	history, err := w.historyKeapIDs(ctx, "contacts")
	if err != nil {
		return err
	}
	for l, k := range localToKeap {
		if k != 0 {
			history[l] = k
		}
	}
	resolve := func(ref string) int64 {
		n, _ := strconv.ParseInt(ref[1:], 10, 64)
		if ref[0] == 'k' {
			return n
		}
		return history[n]
	}
	writes, deleted, emails, ops := led.snapshot()
	rep.Ops, rep.Writes = ops, len(writes)
	w.judgeDeletes(rep, deleted, emails, keap, byKeap, owners, resolve)
	judgeWrites(rep, writes, deleted, initial, keap, resolve)
	rep.Trails = w.trails(ctx, divs, writes, resolve)

	// 4. Echo calls: writes to Keap for a contact the local actor never touched, among those the
	// Keap actor knows (present at the start, or made by it). The others were made by pushes of
	// local inserts, which only the local actor edits or deletes; it may delete one before the
	// push learnt its Keap id, which the checker then never learns either.
	touched, keapKnown := map[int64]bool{}, map[int64]bool{}
	for id := range initial {
		keapKnown[id] = true
	}
	for _, wr := range writes {
		if wr.Side == sideLocal {
			touched[resolve(wr.Ref)] = true
		} else {
			keapKnown[resolve(wr.Ref)] = true
		}
	}
	for ref, side := range deleted {
		if strings.HasPrefix(side, sideLocal) {
			touched[resolve(ref)] = true
		}
	}
	parked, err := w.deadLetters(ctx, rep)
	if err != nil {
		return err
	}
	orders, err := w.checkOrders(ctx, rep, led.orderOps(), u, keap, parked)
	if err != nil {
		return err
	}
	w.judgeCalls(rep, touched, keapKnown, orders, soakStart)
	return nil
}

// judgeDeletes: a contact either actor deleted must be gone from both sides, and no contact may
// carry an email a deleted contact had (a delete undone by a create racing it).
func (w *world) judgeDeletes(rep *Report, deleted map[string]string, emails map[string][]string,
	keap map[int64]fields, byKeap map[int64]pgContact, owners map[string][]int64, resolve func(string) int64) {
	for _, ref := range sortedKeys(deleted) {
		if strings.HasSuffix(deleted[ref], "?") {
			continue // the delete statement failed during the Postgres restart: it may not have happened
		}
		id := resolve(ref)
		_, inKeap := keap[id]
		_, inPG := byKeap[id]
		if id != 0 && (inKeap || inPG) {
			rep.Resurrected = append(rep.Resurrected, fmt.Sprintf("%s (Keap id %d) deleted by %s, still in Keap: %v, in Postgres: %v",
				ref, id, deleted[ref], inKeap, inPG))
			continue
		}
		for _, e := range emails[ref] {
			if ids := owners[strings.ToLower(e)]; len(ids) > 0 {
				rep.Resurrected = append(rep.Resurrected, fmt.Sprintf("%s deleted by %s, but Keap contact(s) %v still carry its email %s",
					ref, deleted[ref], ids, e))
			}
		}
	}
}

// judgeWrites: for every field an actor wrote on a contact that still exists, the final value
// must be the last accepted write of one of the two actors. When only one side wrote a field,
// it must be that side's last write. When both did, either may win: newest_wins compares the
// local edit time (Postgres now()) with Keap's modification time of the whole record at apply
// time, so "newest" is on two clocks (and the sandbox clock runs 25 h ahead after the token
// expiry) and at record, not field, granularity; the harness cannot replay that decision
// exactly, so it accepts either side's last write and counts which side won.
func judgeWrites(rep *Report, writes []write, deleted map[string]string, initial map[int64]fields,
	keap map[int64]fields, resolve func(string) int64) {
	type key struct {
		id    int64
		field string
	}
	byKey := map[key][]write{}
	var order []key
	for _, wr := range writes {
		if _, gone := deleted[wr.Ref]; gone {
			continue
		}
		k := key{resolve(wr.Ref), wr.Field}
		if _, seen := byKey[k]; !seen {
			order = append(order, k)
		}
		byKey[k] = append(byKey[k], wr)
	}
	missing := map[int64]bool{}
	for _, k := range order {
		ws := byKey[k]
		if k.id == 0 {
			if !missing[0] {
				missing[0] = true
				rep.LostUpdates = append(rep.LostUpdates, fmt.Sprintf("%s (and any other local create without a Keap id): "+
					"its writes are not in Keap", ws[0].Ref))
			}
			continue
		}
		final, ok := keap[k.id]
		if !ok {
			if !missing[k.id] {
				missing[k.id] = true
				rep.LostUpdates = append(rep.LostUpdates, fmt.Sprintf("contact %d (%s): edited, never deleted, but gone from Keap", k.id, ws[0].Ref))
			}
			continue
		}
		last, lastT := map[string]string{}, map[string]time.Time{}
		for _, wr := range ws {
			if !wr.Uncertain {
				last[wr.Side], lastT[wr.Side] = wr.Value, wr.At
			}
		}
		allowed := map[string]bool{}
		for _, v := range last {
			allowed[v] = true
		}
		for _, wr := range ws {
			if wr.Uncertain && wr.At.After(lastT[wr.Side]) {
				allowed[wr.Value] = true // may or may not have committed
			}
		}
		if len(last) == 0 {
			allowed[initial[k.id][k.field]] = true
		}
		got := final[k.field]
		if !allowed[got] {
			var hist []string
			for _, wr := range ws {
				u := ""
				if wr.Uncertain {
					u = "?"
				}
				hist = append(hist, fmt.Sprintf("%s%s %q @%s", wr.Side, u, wr.Value, wr.At.Format("15:04:05.000")))
			}
			hint := ""
			for _, wr := range ws {
				if wr.Value == got {
					// Typically: a push Keap accepted whose mark_pushed never committed (SIGKILL,
					// Postgres restart), then a Keap version carrying it won newest_wins against
					// the newer local edit, on Keap's record-level clock.
					hint = " [an earlier write came back]"
				}
			}
			rep.LostUpdates = append(rep.LostUpdates, fmt.Sprintf("contact %d %s = %q (initially %q)%s; writes: %s",
				k.id, k.field, got, initial[k.id][k.field], hint, strings.Join(hist, ", ")))
			continue
		}
		if len(last) == 2 && last[sideKeap] != last[sideLocal] {
			if got == last[sideKeap] {
				rep.BothWroteKeapWon++
			} else {
				rep.BothWroteLocalWon++
			}
		}
	}
}

var (
	contactWrite = regexp.MustCompile(`/v1/contacts/(\d+)(/tags(/\d+)?)?$`)
	orderWrite   = regexp.MustCompile(`/v1/orders(/(\d+))?$`)
)

// judgeCalls counts write calls to Keap during the soak. An echo is approximated as a
// successful write (PATCH, PUT, POST, DELETE) naming a contact the local actor never wrote or
// deleted, or an order it never deleted, among those the Keap actor knows: nothing local can
// justify it, so it can only be a change that came from Keap going back. Writes to contacts that were also edited locally are
// not judged one by one (a push legitimately follows each local edit, and a crash between
// Keap's answer and mark_pushed legitimately repeats one); their count is reported. Order
// creates are counted against the local inserts: one more is an order sent back.
func (w *world) judgeCalls(rep *Report, touched, keapKnown map[int64]bool, orders orderCalls, since time.Time) {
	creates := 0
	for _, r := range w.sb.Requests() {
		if r.At.Before(since) || r.Status >= 300 {
			continue
		}
		switch r.Method {
		case "PATCH", "PUT", "POST", "DELETE":
		default:
			continue
		}
		if m := orderWrite.FindStringSubmatch(r.Path); m != nil {
			rep.WriteCalls++
			if m[2] == "" {
				creates++
				continue
			}
			if id, _ := strconv.ParseInt(m[2], 10, 64); orders.keapKnown[id] && !orders.deleted[id] {
				rep.Echoes = append(rep.Echoes, fmt.Sprintf("%s %s at %s", r.Method, r.Path, r.At.Format("15:04:05.000")))
			}
			continue
		}
		if !strings.Contains(r.Path, "/contacts") {
			continue
		}
		rep.WriteCalls++
		m := contactWrite.FindStringSubmatch(r.Path)
		if m == nil {
			continue // a create (PUT/POST /v1/contacts): only ever for a local insert
		}
		id, _ := strconv.ParseInt(m[1], 10, 64)
		if keapKnown[id] && !touched[id] {
			rep.Echoes = append(rep.Echoes, fmt.Sprintf("%s %s at %s", r.Method, r.Path, r.At.Format("15:04:05.000")))
		}
	}
	if creates > orders.inserts {
		rep.Echoes = append(rep.Echoes, fmt.Sprintf("%d orders created in Keap for %d local inserts", creates, orders.inserts))
	}
}
