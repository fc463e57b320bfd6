package keap

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// paymentV2 is a payment as GET /v2/sales/payments lists it (swagger.yml, Payment).
type paymentV2 struct {
	ID           ID              `json:"id"` // a string in v2
	Amount       json.RawMessage `json:"amount"`
	Note         *string         `json:"note"`
	Status       string          `json:"status"`
	Commissioned Bool            `json:"commissioned"`
	PaymentTime  Time            `json:"payment_time"`
	UpdateTime   Time            `json:"update_time"`
	OrderIDs     []ID            `json:"order_ids"`
}

// v1PayStatus is v1's pay_status for v2's status. Keap documents neither list's values in full
// (FACTS.md); a completed payment is what v1 calls "Paid". Another status is passed on as it is.
var v1PayStatus = map[string]string{"COMPLETED": "Paid"}

// v1 is the payment as GET /v1/orders/{order}/payments gives it, so that either way of reading
// an order's payments stores the same thing: v1's id and payment_id are the payment's id, its
// invoice_id the order's (an order is its own invoice in v1), skip_commission the opposite of
// v2's commissioned.
func (p paymentV2) v1(order ID) (Payment, error) {
	status := p.Status
	if s, ok := v1PayStatus[status]; ok {
		status = s
	}
	amount := p.Amount
	if len(amount) == 0 {
		amount = jsonNull
	}
	v1 := map[string]any{
		"id": p.ID, "payment_id": p.ID, "invoice_id": order, "amount": amount, "pay_status": status,
		"pay_date": p.PaymentTime, "last_updated": p.UpdateTime, "note": p.Note, "skip_commission": !bool(p.Commissioned),
	}
	raw, err := json.Marshal(v1)
	if err != nil {
		return Payment{}, fmt.Errorf("payment %d: %w", p.ID, err)
	}
	var out Payment
	if err := json.Unmarshal(raw, &out); err != nil {
		return Payment{}, fmt.Errorf("payment %d: %w", p.ID, err)
	}
	return out, nil
}

// OrdersPayments reads the payments of many orders through v2's listing
// (filter=order_ids==1,2,3, pages of 1000), each as OrderPayments would give it (see
// paymentV2.v1). Every order asked about is in the answer, with no payments when Keap lists none.
func (c *Client) OrdersPayments(ctx context.Context, orderIDs []ID) (map[ID][]Payment, error) {
	const path = "/v2/sales/payments"
	out := make(map[ID][]Payment, len(orderIDs))
	for _, id := range orderIDs {
		out[id] = []Payment{}
	}
	ids := slices.Sorted(func(yield func(ID) bool) {
		for id := range out {
			if !yield(id) {
				return
			}
		}
	})
	for chunk := range slices.Chunk(ids, IDsPerCall) {
		names := make([]string, len(chunk))
		for i, id := range chunk {
			names[i] = strconv.FormatInt(int64(id), 10)
		}
		q := url.Values{"filter": {"order_ids==" + strings.Join(names, ",")}, "page_size": {"1000"}, "order_by": {"id asc"}}
		seen := map[string]bool{}
		for {
			var env struct {
				Payments []json.RawMessage `json:"payments"`
				Next     string            `json:"next_page_token"`
			}
			r := c.get(path, path, q)
			if err := c.do(ctx, r, &env); err != nil {
				return nil, err
			}
			for _, raw := range env.Payments {
				var p paymentV2
				if err := json.Unmarshal(raw, &p); err != nil {
					return nil, newItemError(r, raw, err)
				}
				for _, order := range p.OrderIDs {
					if _, asked := out[order]; !asked {
						continue // also paid another order, not asked about
					}
					v1, err := p.v1(order)
					if err != nil {
						return nil, newItemError(r, raw, err)
					}
					out[order] = append(out[order], v1)
				}
			}
			if env.Next == "" || len(env.Payments) == 0 {
				break
			}
			if seen[env.Next] {
				return nil, fmt.Errorf("keap GET %s: page token repeats", path)
			}
			seen[env.Next] = true
			q.Set("page_token", env.Next)
		}
	}
	return out, nil
}
