package sandbox

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"time"
)

type product struct {
	ID          int64              `json:"id"`
	Name        string             `json:"product_name"`
	Price       float64            `json:"product_price"`
	SKU         string             `json:"sku"`
	Description string             `json:"description,omitempty"`
	Plans       []subscriptionPlan `json:"subscription_plans,omitempty"`
	// inactive: retired from sale ([V2]'s active=false); created/updated are [V2]'s timestamps.
	inactive         bool
	short            string
	created, updated time.Time
}

type subscriptionPlan struct {
	ID        int64   `json:"id"`
	Cycle     string  `json:"cycle"` // YEAR, MONTH, WEEK, DAY
	Frequency int     `json:"frequency"`
	Price     float64 `json:"plan_price"`
}

type orderItem struct {
	id, productID int64
	quantity      int
	price         float64
	description   string
	itemType      string
}

type payment struct {
	id     int64
	amount float64
	date   time.Time
	method string
	notes  string
}

type order struct {
	id, contactID                int64
	title, orderType             string
	orderDate, created, updated  time.Time
	items                        []orderItem
	payments                     []payment
	leadAffiliate, saleAffiliate int64
	custom                       customValues // v2 alone shows and changes them (v1custom.go)
}

func (o *order) total() float64 {
	var t float64
	for _, it := range o.items {
		t += it.price * float64(it.quantity)
	}
	return round2(t)
}

func (o *order) paid() float64 {
	var t float64
	for _, p := range o.payments {
		t += p.amount
	}
	return round2(t)
}

func round2(f float64) float64 { return math.Round(f*100) / 100 }

// status: Keap's DRAFT/SENT/VIEWED/PAID; the sandbox uses DRAFT until fully paid.
func (o *order) status() string {
	if o.total() > 0 && o.paid() >= o.total() {
		return "PAID"
	}
	return "DRAFT"
}

func orderEvent(key string, o *order, at time.Time) event {
	return event{key: key, objectType: "order", id: o.id, apiPath: fmt.Sprintf("/v1/orders/%d", o.id), at: at}
}

// renderOrder builds EcommerceReportingOrder (list and get). [V1] types contact_id and
// product_id as strings there, so they are served as strings.
func (s *store) renderOrder(o *order) map[string]any {
	items := make([]map[string]any, 0, len(o.items))
	for _, it := range o.items {
		p := s.products[it.productID]
		prod := map[string]any{"id": it.productID}
		name := ""
		if p != nil {
			name = p.Name
			prod = map[string]any{"id": p.ID, "name": p.Name, "sku": p.SKU, "shippable": false, "taxable": false}
		}
		items = append(items, map[string]any{"id": it.id, "name": name, "description": it.description,
			"price": it.price, "quantity": it.quantity, "type": it.itemType, "product": prod, "cost": 0.0, "discount": 0.0})
	}
	out := s.orderCommon(o)
	out["order_items"] = items
	out["contact_id"] = strconv.FormatInt(o.contactID, 10)
	out["order_type"] = o.orderType
	out["source_type"] = "API"
	out["invoice_number"] = o.id
	out["allow_payment"] = true
	out["allow_paypal"] = false
	out["recurring"] = false
	return out
}

// renderCreatedOrder builds the Order schema [V1] declares for POST /v1/orders.
func (s *store) renderCreatedOrder(o *order) map[string]any {
	items := make([]map[string]any, 0, len(o.items))
	for _, it := range o.items {
		items = append(items, s.renderItem(it))
	}
	out := s.orderCommon(o)
	out["order_items"] = items
	return out
}

func (s *store) renderItem(it orderItem) map[string]any {
	prod := map[string]any{"id": it.productID}
	name := ""
	if p := s.products[it.productID]; p != nil {
		name = p.Name
		prod = map[string]any{"id": p.ID, "product_name": p.Name, "product_price": p.Price, "sku": p.SKU}
	}
	return map[string]any{"id": it.id, "name": name, "description": it.description, "price": it.price,
		"quantity": it.quantity, "type": it.itemType, "product": prod}
}

func (s *store) orderCommon(o *order) map[string]any {
	out := map[string]any{
		"id": o.id, "title": o.title, "status": o.status(),
		"total": o.total(), "total_paid": o.paid(), "total_due": round2(o.total() - o.paid()), "refund_total": 0.0,
		"order_date": keapTime(o.orderDate), "creation_date": keapTime(o.created), "modification_date": keapTime(o.updated),
	}
	if o.leadAffiliate != 0 {
		out["lead_affiliate_id"] = o.leadAffiliate
	}
	if o.saleAffiliate != 0 {
		out["sales_affiliate_id"] = o.saleAffiliate
	}
	if c := s.contacts[o.contactID]; c != nil {
		out["contact"] = map[string]any{"id": c.id, "email": first(c.emails()), "first_name": c.str("given_name"), "last_name": c.str("family_name")}
	}
	return out
}

type orderQuery struct {
	contactID, productID int64
	paid                 *bool
	since, until         time.Time // on modification_date
	order                string    // "", order_date, update_date
	page                 page
}

func (s *store) listOrders(q orderQuery) ([]map[string]any, int) {
	prof := s.profile.get()
	s.mu.RLock()
	defer s.mu.RUnlock()
	var all []*order
	for _, id := range s.orderIDs {
		o := s.orders[id]
		if q.contactID != 0 && o.contactID != q.contactID {
			continue
		}
		if q.productID != 0 && !o.hasProduct(q.productID) {
			continue
		}
		if q.paid != nil && (o.total()-o.paid() <= 0) != *q.paid {
			continue
		}
		if !q.since.IsZero() && (o.updated.Before(q.since) || (prof.SinceExclusive && o.updated.Equal(q.since))) {
			continue
		}
		if !q.until.IsZero() && !o.updated.Before(q.until) {
			continue
		}
		all = append(all, o)
	}
	// [V1]: "Dates are ordered by most recent at the top. Default is creation_date." So every
	// order, the default and the explicit ones, lists newest first; OrdersOldestFirst reverses
	// it. Ties go by id, in the same direction.
	key := func(o *order) time.Time {
		switch q.order {
		case "order_date":
			return o.orderDate
		case "update_date":
			return o.updated
		}
		return o.created
	}
	sort.SliceStable(all, func(i, j int) bool {
		a, b := all[i], all[j]
		ka, kb := key(a), key(b)
		older := ka.Before(kb) || (ka.Equal(kb) && a.id < b.id)
		if prof.OrdersOldestFirst {
			return older
		}
		return !older && a.id != b.id
	})
	lo, hi := q.page.bounds(len(all))
	out := make([]map[string]any, 0, hi-lo)
	for _, o := range all[lo:hi] {
		out = append(out, s.renderOrder(o))
	}
	return out, len(all)
}

func (o *order) hasProduct(id int64) bool {
	for _, it := range o.items {
		if it.productID == id {
			return true
		}
	}
	return false
}
