package sandbox

import (
	"fmt"
	"net/http"
	"strconv"
	"time"
)

func (a *restAPI) listOrders(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	pg, err := parsePage(q)
	if err != nil {
		return err
	}
	oq := orderQuery{page: pg, order: q.Get("order")}
	if oq.order != "" && oq.order != "order_date" && oq.order != "update_date" {
		return badRequest("Invalid order: " + oq.order)
	}
	for name, dst := range map[string]*int64{"contact_id": &oq.contactID, "product_id": &oq.productID} {
		if v := q.Get(name); v != "" {
			if *dst, err = strconv.ParseInt(v, 10, 64); err != nil {
				return badRequest("Invalid " + name + ": " + v)
			}
		}
	}
	if v := q.Get("paid"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return badRequest("Invalid paid: " + v)
		}
		oq.paid = &b
	}
	if oq.since, err = timeParam(q.Get("since")); err != nil {
		return err
	}
	if oq.until, err = timeParam(q.Get("until")); err != nil {
		return err
	}
	items, total := a.store.listOrders(oq)
	next, prev := pg.links(a.baseURL(), r, len(items), total)
	return writeList(w, "orders", items, total, next, prev, func(m map[string]any) ([]byte, error) { return marshal(m) })
}

func (a *restAPI) getOrder(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	o, ok := a.store.getOrder(id)
	if !ok {
		return notFound(fmt.Sprintf("Order with ID %d not found", id))
	}
	writeJSON(w, http.StatusOK, o)
	return nil
}

func (a *restAPI) createOrder(w http.ResponseWriter, r *http.Request) error {
	var in orderInput
	if err := decodeBody(r, &in); err != nil {
		return err
	}
	o, err := a.store.createOrder(in)
	if err != nil {
		return err
	}
	a.store.mu.RLock()
	body := a.store.renderCreatedOrder(o)
	a.store.mu.RUnlock()
	writeJSON(w, http.StatusCreated, body)
	return nil
}

func (a *restAPI) deleteOrder(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	if err := a.store.deleteOrder(id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *restAPI) addOrderItem(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var in orderItemInput
	if err := decodeBody(r, &in); err != nil {
		return err
	}
	var added orderItem
	_, err = a.store.changeOrder(id, func(o *order) error {
		it, err := a.store.item(in)
		if err != nil {
			return err
		}
		added = it
		o.items = append(o.items, it)
		return nil
	})
	if err != nil {
		return err
	}
	a.store.mu.RLock()
	body := a.store.renderItem(added)
	a.store.mu.RUnlock()
	writeJSON(w, http.StatusCreated, body)
	return nil
}

func (a *restAPI) deleteOrderItem(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	itemID, err := pathID(r, "itemId")
	if err != nil {
		return err
	}
	_, err = a.store.changeOrder(id, func(o *order) error {
		for i, it := range o.items {
			if it.id == itemID {
				o.items = append(o.items[:i], o.items[i+1:]...)
				return nil
			}
		}
		return notFound(fmt.Sprintf("Order item with ID %d not found", itemID))
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *restAPI) listPayments(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	a.store.mu.RLock()
	o := a.store.orders[id]
	var out []map[string]any
	if o != nil {
		out = make([]map[string]any, 0, len(o.payments))
		for _, p := range o.payments {
			out = append(out, map[string]any{"id": p.id, "amount": p.amount, "invoice_id": o.id, "payment_id": p.id,
				"pay_date": keapTime(p.date), "last_updated": keapTime(p.date), "pay_status": "Paid", "note": p.notes, "skip_commission": false})
		}
	}
	a.store.mu.RUnlock()
	if o == nil {
		return notFound(fmt.Sprintf("Order with ID %d not found", id))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *restAPI) createPayment(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var in struct {
		Amount string `json:"payment_amount"` // a string in [V1]
		Method string `json:"payment_method_type"`
		Date   string `json:"date"`
		Notes  string `json:"notes"`
	}
	if err := decodeBody(r, &in); err != nil {
		return err
	}
	amount, err := strconv.ParseFloat(in.Amount, 64)
	if err != nil {
		return badRequest("Invalid payment_amount: " + in.Amount)
	}
	var at time.Time
	if in.Date != "" {
		if at, err = parseKeapTime(in.Date); err != nil {
			return badRequest("Invalid date: " + in.Date)
		}
	}
	o, p, err := a.store.addPayment(id, amount, in.Method, in.Notes, at)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]any{"id": p.id, "invoice_id": o.id, "payment_amount": p.amount,
		"payment_status": "APPROVED", "transaction_id": p.id})
	return nil
}
