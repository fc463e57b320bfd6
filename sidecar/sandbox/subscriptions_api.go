package sandbox

import (
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
)

func (a *restAPI) listSubscriptions(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	pg, err := parsePage(q)
	if err != nil {
		return err
	}
	var contactID int64
	if v := q.Get("contact_id"); v != "" {
		if contactID, err = strconv.ParseInt(v, 10, 64); err != nil {
			return badRequest("Invalid contact_id: " + v)
		}
	}
	all := a.store.listSubs(contactID)
	lo, hi := pg.bounds(len(all))
	next, prev := pg.links(a.baseURL(), r, hi-lo, len(all))
	return writeList(w, "subscriptions", all[lo:hi], len(all), next, prev, func(s *subscription) ([]byte, error) { return marshal(s.v1()) })
}

func (a *restAPI) createSubscription(w http.ResponseWriter, r *http.Request) error {
	var in subscriptionInput
	if err := decodeBody(r, &in); err != nil {
		return err
	}
	sub, err := a.store.createSubscription(in)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, sub.v1())
	return nil
}

func (a *restAPI) getSubscriptionV2(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	a.store.mu.RLock()
	sub := a.store.subs[id]
	a.store.mu.RUnlock()
	if sub == nil {
		return notFound(fmt.Sprintf("Subscription with ID %d not found", id))
	}
	writeJSON(w, http.StatusOK, sub.v2())
	return nil
}

// listSubscriptionsV2 serves page_size/page_token paging, filter=contact_id==N and
// order_by=id|modification_time [asc|desc]. The page token is an opaque offset.
func (a *restAPI) listSubscriptionsV2(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	size, offset, err := v2Page(q)
	if err != nil {
		return err
	}
	var contactID int64
	if f := q.Get("filter"); f != "" {
		for _, clause := range strings.Split(f, ";") {
			name, val, ok := strings.Cut(clause, "==")
			if !ok || name != "contact_id" {
				return badRequest("Invalid filter: " + clause)
			}
			id, err := strconv.ParseInt(val, 10, 64)
			if err != nil {
				return badRequest("Invalid filter: " + clause)
			}
			contactID = id
		}
	}
	all := a.store.listSubs(contactID)
	field, dir, _ := strings.Cut(q.Get("order_by"), " ")
	if field != "" && field != "id" && field != "modification_time" {
		return badRequest("Invalid order_by: " + q.Get("order_by"))
	}
	field, desc := a.store.listOrder(field, dir, "modification_time")
	sort.SliceStable(all, func(i, j int) bool {
		x, y := all[i], all[j]
		less, eq := x.id < y.id, x.id == y.id
		if field == "modification_time" && !x.updated.Equal(y.updated) {
			less, eq = x.updated.Before(y.updated), false
		}
		if eq {
			return false
		}
		return less != desc
	})
	writeV2Page(w, "subscriptions", all, size, offset, (*subscription).v2)
	return nil
}
