package sandbox

import (
	"fmt"
	"math"
	"strconv"
	"time"
)

type orderItemInput struct {
	ProductID   int64  `json:"product_id"`
	Quantity    int    `json:"quantity"`
	Price       string `json:"price"` // [V1] types the item price as a string
	Description string `json:"description"`
	ItemType    string `json:"item_type"`
}

type orderInput struct {
	ContactID     int64            `json:"contact_id"`
	OrderDate     string           `json:"order_date"`
	Items         []orderItemInput `json:"order_items"`
	Title         string           `json:"order_title"`
	OrderType     string           `json:"order_type"`
	LeadAffiliate int64            `json:"lead_affiliate_id"`
	SaleAffiliate int64            `json:"sales_affiliate_id"`
}

// item turns input into a stored item; the caller holds the lock. Without a price the
// product's price applies.
func (s *store) item(in orderItemInput) (orderItem, error) {
	p := s.products[in.ProductID]
	if p == nil {
		return orderItem{}, badRequest(fmt.Sprintf("Product with ID %d not found", in.ProductID))
	}
	if in.Quantity <= 0 {
		return orderItem{}, badRequest("quantity must be positive")
	}
	price := p.Price
	if in.Price != "" {
		v, err := strconv.ParseFloat(in.Price, 64)
		if err != nil || !storableAmount(v) {
			return orderItem{}, badRequest("Invalid price: " + in.Price)
		}
		price = v
	}
	typ := in.ItemType
	if typ == "" {
		typ = "PRODUCT"
	}
	return orderItem{id: s.nextID("orderItem"), productID: p.ID, quantity: in.Quantity, price: price, description: in.Description, itemType: typ}, nil
}

// maxAmount bounds a price or payment. Keap keeps money as a decimal amount and refuses what it
// cannot hold with a 400; the sandbox refuses NaN, infinities and amounts whose totals would
// overflow a float64, so every order it accepts can be rendered as JSON.
const maxAmount = 1e12

func storableAmount(v float64) bool {
	return !math.IsNaN(v) && math.Abs(v) <= maxAmount
}

func (s *store) createOrder(in orderInput) (*order, error) {
	var out *order
	err := s.write(func() ([]event, error) {
		if s.contacts[in.ContactID] == nil {
			return nil, badRequest(fmt.Sprintf("Contact with ID %d not found", in.ContactID))
		}
		od, err := parseKeapTime(in.OrderDate)
		if err != nil {
			return nil, badRequest("Invalid order_date: " + in.OrderDate)
		}
		o := &order{contactID: in.ContactID, title: in.Title, orderType: in.OrderType, orderDate: od,
			leadAffiliate: in.LeadAffiliate, saleAffiliate: in.SaleAffiliate}
		for _, it := range in.Items {
			item, err := s.item(it)
			if err != nil {
				return nil, err
			}
			o.items = append(o.items, item)
		}
		o.id = s.nextID("order")
		o.created = s.stamp.next()
		o.updated = o.created
		s.orders[o.id] = o
		s.orderIDs = append(s.orderIDs, o.id)
		out = o
		return []event{orderEvent("order.add", o, o.updated)}, nil
	})
	return out, err
}

// changeOrder runs fn on a copy of the order and, when it succeeds, stores the copy with a new
// modification_date and emits order.edit.
func (s *store) changeOrder(id int64, fn func(o *order) error) (*order, error) {
	var out *order
	err := s.write(func() (evs []event, err error) {
		out, evs, err = s.changeOrderLocked(id, fn, true)
		return evs, err
	})
	return out, err
}

// changeOrderLocked is changeOrder under the held write lock; bump false keeps the order's
// modification_date and emits nothing.
func (s *store) changeOrderLocked(id int64, fn func(o *order) error, bump bool) (*order, []event, error) {
	cur := s.orders[id]
	if cur == nil {
		return nil, nil, notFound(fmt.Sprintf("Order with ID %d not found", id))
	}
	o := *cur
	o.items = append([]orderItem(nil), cur.items...)
	o.payments = append([]payment(nil), cur.payments...)
	if err := fn(&o); err != nil {
		return nil, nil, err
	}
	s.orders[id] = &o
	if !bump {
		return &o, nil, nil
	}
	o.updated = s.stamp.next()
	return &o, []event{orderEvent("order.edit", &o, o.updated)}, nil
}

// deleteOrder refuses orders with payments: v1 deletes only unpaid orders.
func (s *store) deleteOrder(id int64) error {
	return s.write(func() ([]event, error) {
		o := s.orders[id]
		if o == nil {
			return nil, notFound(fmt.Sprintf("Order with ID %d not found", id))
		}
		if len(o.payments) > 0 {
			return nil, badRequest(fmt.Sprintf("Order with ID %d has payments and cannot be deleted", id))
		}
		delete(s.orders, id)
		s.orderIDs = removeID(s.orderIDs, id)
		return []event{orderEvent("order.delete", o, s.stamp.next())}, nil
	})
}

// addPayment records a payment. Keap announces it with invoice.payment.add naming the invoice,
// which in v1 is the order (invoice_number = id). Whether it also bumps modification_date and
// fires order.edit is undocumented: it does unless PaymentKeepsOrderStamp.
func (s *store) addPayment(id int64, amount float64, method, notes string, at time.Time) (*order, payment, error) {
	var p payment
	pay := func(o *order) error {
		if !(amount > 0) || !storableAmount(amount) { // !(>) also refuses NaN
			return badRequest("payment_amount must be positive")
		}
		if at.IsZero() {
			at = s.stamp.clock.Now()
		}
		p = payment{id: s.nextID("payment"), amount: round2(amount), date: at, method: method, notes: notes}
		o.payments = append(o.payments, p)
		return nil
	}
	var out *order
	err := s.write(func() ([]event, error) {
		o, evs, err := s.changeOrderLocked(id, pay, !s.profile.get().PaymentKeepsOrderStamp)
		if err != nil {
			return nil, err
		}
		out = o
		return append(evs, event{key: "invoice.payment.add", objectType: "invoice", id: o.id,
			apiPath: fmt.Sprintf("/v1/orders/%d", o.id), at: s.stamp.next()}), nil
	})
	return out, p, err
}

func (s *store) getOrder(id int64) (map[string]any, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	o := s.orders[id]
	if o == nil {
		return nil, false
	}
	return s.renderOrder(o), true
}
