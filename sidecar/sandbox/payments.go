package sandbox

import (
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// v2 is a payment as GET /v2/sales/payments lists it (swagger.yml, Payment): ids as strings,
// the orders it pays in order_ids. The sandbox's payments each pay one order, are complete when
// recorded and are never edited, so update_time is payment_time.
func (p payment) v2(o *order) map[string]any {
	return map[string]any{
		"id": strconv.FormatInt(p.id, 10), "type": p.method, "amount": p.amount, "note": p.notes,
		"status": "COMPLETED", "commissioned": true, "synced": false,
		"payment_time": keapTime(p.date), "update_time": keapTime(p.date),
		"contact_id": strconv.FormatInt(o.contactID, 10), "order_ids": []string{strconv.FormatInt(o.id, 10)},
	}
}

// paymentFilter is one clause of the listing's filter: name, operator, value.
type paymentFilter struct{ name, op, val string }

// paymentFilterOps are the filter's operators, longest first so that ">=" is not read as ">".
var paymentFilterOps = []string{"==", "!=", ">=", "<=", ">", "<"}

// paymentFilterAllows names the filter fields the spec lists and their operators ("==" alone
// unless said). merchant_account_id/type are refused: the sandbox's payments have no merchant.
var paymentFilterAllows = map[string][]string{
	"id": {"==", ">", ">=", "<", "<="}, "ids": {"=="}, "amount": {"==", "<=", "<", ">=", ">", "!="},
	"order_id": {"=="}, "order_ids": {"=="}, "contact_id": {"=="}, "since_time": {"=="}, "until_time": {"=="},
}

func parsePaymentFilter(f string) ([]paymentFilter, error) {
	var out []paymentFilter
	if f == "" {
		return nil, nil
	}
	for _, clause := range strings.Split(f, ";") {
		var pf paymentFilter
		for i := range clause {
			for _, op := range paymentFilterOps {
				if strings.HasPrefix(clause[i:], op) {
					pf = paymentFilter{name: clause[:i], op: op, val: clause[i+len(op):]}
					break
				}
			}
			if pf.op != "" {
				break
			}
		}
		ops, known := paymentFilterAllows[pf.name]
		if pf.op == "" || !known || !slices.Contains(ops, pf.op) || pf.val == "" {
			return nil, badRequest("Invalid filter: " + clause)
		}
		switch pf.name {
		case "since_time", "until_time":
			if _, err := parseKeapTime(pf.val); err != nil {
				return nil, badRequest("Invalid filter: " + clause)
			}
		case "amount":
			if _, err := strconv.ParseFloat(pf.val, 64); err != nil {
				return nil, badRequest("Invalid filter: " + clause)
			}
		default:
			for _, v := range strings.Split(pf.val, ",") {
				if _, err := strconv.ParseInt(v, 10, 64); err != nil {
					return nil, badRequest("Invalid filter: " + clause)
				}
			}
		}
		out = append(out, pf)
	}
	return out, nil
}

// compareAmount applies op to a number and the clause's value.
func compareAmount(x float64, op, val string) bool {
	y, _ := strconv.ParseFloat(val, 64)
	switch op {
	case "==":
		return x == y
	case "!=":
		return x != y
	case ">":
		return x > y
	case ">=":
		return x >= y
	case "<":
		return x < y
	}
	return x <= y
}

// inList says the id is one of the clause's comma-separated ids.
func inList(id int64, val string) bool {
	return slices.Contains(strings.Split(val, ","), strconv.FormatInt(id, 10))
}

func (f paymentFilter) matches(p payment, o *order) bool {
	switch f.name {
	case "id":
		return compareAmount(float64(p.id), f.op, f.val)
	case "ids":
		return inList(p.id, f.val)
	case "amount":
		return compareAmount(p.amount, f.op, f.val)
	case "order_id", "order_ids":
		return inList(o.id, f.val)
	case "contact_id":
		return inList(o.contactID, f.val)
	case "since_time":
		t, _ := parseKeapTime(f.val)
		return !p.date.Before(t)
	}
	t, _ := parseKeapTime(f.val) // until_time
	return !p.date.After(t)
}

// listPaymentsV2 serves GET /v2/sales/payments: filter clauses joined by ';' (id with
// comparators, ids==a,b, amount with comparators, order_id, order_ids==a,b, contact_id,
// since_time/until_time on update_time, inclusive), order_by=id|amount|payment_time|contact_id
// [asc|desc] (default id), page_size (at most 1000) and page_token.
func (a *restAPI) listPaymentsV2(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	size, offset, err := v2Page(q)
	if err != nil {
		return err
	}
	filters, err := parsePaymentFilter(q.Get("filter"))
	if err != nil {
		return err
	}
	field, dir, _ := strings.Cut(q.Get("order_by"), " ")
	if !slices.Contains([]string{"", "id", "amount", "payment_time", "contact_id"}, field) {
		return badRequest("Invalid order_by: " + q.Get("order_by"))
	}
	type paid struct {
		p payment
		o *order
	}
	a.store.mu.RLock()
	defer a.store.mu.RUnlock()
	var all []paid
	for _, id := range a.store.orderIDs {
		o := a.store.orders[id]
		if o == nil {
			continue
		}
	payments:
		for _, p := range o.payments {
			for _, f := range filters {
				if !f.matches(p, o) {
					continue payments
				}
			}
			all = append(all, paid{p, o})
		}
	}
	desc := strings.EqualFold(dir, "desc")
	key := func(x paid) float64 {
		switch field {
		case "amount":
			return x.p.amount
		case "payment_time":
			return float64(x.p.date.UnixNano()) / float64(time.Millisecond)
		case "contact_id":
			return float64(x.o.contactID)
		}
		return float64(x.p.id)
	}
	sort.SliceStable(all, func(i, j int) bool {
		if ki, kj := key(all[i]), key(all[j]); ki != kj {
			return (ki < kj) != desc
		}
		return (all[i].p.id < all[j].p.id) != desc
	})
	writeV2Page(w, "payments", all, size, offset, func(x paid) map[string]any { return x.p.v2(x.o) })
	return nil
}
