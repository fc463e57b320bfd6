package main

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// orderCalls is what the echo judgement needs from the orders: the Keap ids of orders the local
// actor deleted (each may justify one DELETE), those the Keap actor knows (see judgeCalls), and
// how many orders the local actor inserted (each may justify one create).
type orderCalls struct {
	deleted, keapKnown map[int64]bool
	inserts            int
}

// checkOrders compares Keap's orders with keap.orders record by record and field by field, and
// judges the ledger: every order an actor created exists on both sides unless someone deleted
// it, every order someone deleted is gone from both, and no title appears twice.
func (w *world) checkOrders(ctx context.Context, rep *Report, ops []orderOp, u universe, keapContacts map[int64]fields,
	parked map[string]string) (orderCalls, error) {
	calls := orderCalls{deleted: map[int64]bool{}, keapKnown: map[int64]bool{}}
	for _, id := range u.orders {
		calls.keapKnown[id] = true
	}
	keap := keapOrders(w.sb.Snapshot())
	pg, err := w.pgOrders(ctx)
	if err != nil {
		return calls, err
	}
	history, err := w.historyKeapIDs(ctx, "orders")
	if err != nil {
		return calls, err
	}
	rep.KeapOrders, rep.PGOrders = len(keap), len(pg)

	byKeap := map[int64]pgOrder{}
	for _, o := range pg {
		if o.keapID == 0 {
			contact, _ := strconv.ParseInt(o.f["contact"], 10, 64)
			_, contactInKeap := keapContacts[contact]
			if msg, ok := parked["order/"+strconv.FormatInt(o.localID, 10)]; ok && !contactInKeap {
				rep.Refused = append(rep.Refused, fmt.Sprintf("local order %d %q for contact %d: %.120s", o.localID, o.f["title"], contact, msg))
				continue
			}
			rep.Divergent = append(rep.Divergent, fmt.Sprintf("local order %d never reached Keap: %v", o.localID, o.f))
			continue
		}
		history[o.localID] = o.keapID
		byKeap[o.keapID] = o
		if _, ok := keap[o.keapID]; !ok {
			rep.Divergent = append(rep.Divergent, fmt.Sprintf("order %d (local %d) is in Postgres, not in Keap", o.keapID, o.localID))
		}
	}
	for _, id := range sortedKeys(keap) {
		row, ok := byKeap[id]
		if !ok {
			rep.Divergent = append(rep.Divergent, fmt.Sprintf("order %d is in Keap, not in Postgres", id))
			continue
		}
		for _, k := range orderFields {
			if kv, lv := keap[id][k], row.f[k]; kv != lv {
				rep.Divergent = append(rep.Divergent, fmt.Sprintf("order %d %s: Keap %q, Postgres %q", id, k, kv, lv))
			}
		}
	}

	// The actors' titles are unique per write: one twice is an order created twice. (The
	// generated orders' titles repeat, "Order for Ann".)
	written := map[string]bool{}
	for _, op := range ops {
		written[op.Title] = op.Op == "create"
	}
	titles := func(where string, docs map[string][]string) {
		for _, t := range sortedKeys(docs) {
			if ids := docs[t]; len(ids) > 1 && written[t] {
				rep.Duplicates = append(rep.Duplicates, fmt.Sprintf("order %q %s: %s", t, where, strings.Join(ids, ", ")))
			}
		}
	}
	keapTitles, pgTitles := map[string][]string{}, map[string][]string{}
	for id, f := range keap {
		if t := f["title"]; t != "" {
			keapTitles[t] = append(keapTitles[t], strconv.FormatInt(id, 10))
		}
	}
	for _, o := range pg {
		if t := o.f["title"]; t != "" {
			pgTitles[t] = append(pgTitles[t], fmt.Sprintf("local %d (keap %d)", o.localID, o.keapID))
		}
	}
	for _, ids := range keapTitles {
		sort.Strings(ids)
	}
	titles("in Keap", keapTitles)
	titles("in Postgres", pgTitles)

	// The ledger. A local ref names a local id; its Keap id comes from the row or the history.
	keapID := func(ref string) int64 {
		n, _ := strconv.ParseInt(ref[1:], 10, 64)
		if ref[0] == 'k' {
			return n
		}
		return history[n]
	}
	deleted := map[string]orderOp{}
	for _, op := range ops {
		if op.Op == "delete" {
			deleted[op.Ref] = op
			if op.Side == sideLocal {
				calls.deleted[keapID(op.Ref)] = true
			}
		}
		switch {
		case op.Op == "create" && op.Side == sideLocal:
			calls.inserts++
		case op.Side == sideKeap:
			calls.keapKnown[keapID(op.Ref)] = true
		}
	}
	for _, op := range ops {
		switch {
		case op.Op == "delete" && !op.Uncertain:
			id := keapID(op.Ref)
			_, inKeap := keap[id]
			_, inPG := byKeap[id]
			if id != 0 && (inKeap || inPG) {
				rep.Resurrected = append(rep.Resurrected, fmt.Sprintf("order %s (Keap id %d) deleted by %s, still in Keap: %v, in Postgres: %v",
					op.Ref, id, op.Side, inKeap, inPG))
			}
		case op.Op == "create" && !op.Uncertain:
			del, gone := deleted[op.Ref]
			inKeap, inPG := len(keapTitles[op.Title]) > 0, len(pgTitles[op.Title]) > 0
			switch {
			case gone && !del.Uncertain && (inKeap || inPG):
				rep.Resurrected = append(rep.Resurrected, fmt.Sprintf("order %q (%s) deleted by %s, but its title is still in Keap: %v, in Postgres: %v",
					op.Title, op.Ref, del.Side, inKeap, inPG))
			case !gone && !inKeap && !inPG:
				rep.LostUpdates = append(rep.LostUpdates, fmt.Sprintf("order %q created by %s (%s), never deleted, is on neither side",
					op.Title, op.Side, op.Ref))
			}
		}
	}
	sort.Strings(rep.Duplicates)
	return calls, nil
}
