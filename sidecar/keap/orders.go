package keap

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Order is a v1 order. There is no order update in v1; ModificationDate is its version clock.
type Order struct {
	ID               ID              `json:"id"`
	Title            string          `json:"title"`
	Status           string          `json:"status"`
	Total            Number          `json:"total"`
	TotalPaid        Number          `json:"total_paid"`
	TotalDue         Number          `json:"total_due"`
	RefundTotal      Number          `json:"refund_total"`
	ContactID        ID              `json:"contact_id"` // a string in list/get responses
	Contact          *OrderContact   `json:"contact"`
	OrderDate        Time            `json:"order_date"`
	CreationDate     Time            `json:"creation_date"`
	ModificationDate Time            `json:"modification_date"`
	OrderType        string          `json:"order_type"`
	SourceType       string          `json:"source_type"`
	InvoiceNumber    ID              `json:"invoice_number"`
	OrderItems       []OrderItem     `json:"order_items"`
	LeadAffiliateID  ID              `json:"lead_affiliate_id"`
	SalesAffiliateID ID              `json:"sales_affiliate_id"`
	Raw              json.RawMessage `json:"-"`
}

// UnmarshalJSON decodes liberally and keeps the raw JSON. The contact id falls back to the
// nested contact, since create responses carry only that.
func (o *Order) UnmarshalJSON(b []byte) error {
	type plain Order
	var p plain
	raw, err := withRaw(b, &p)
	if err != nil {
		return fmt.Errorf("order: %w", err)
	}
	*o = Order(p)
	o.Raw = raw
	if o.ContactID == 0 && o.Contact != nil {
		o.ContactID = o.Contact.ID
	}
	return nil
}

// OrderContact is the contact summary inside an order.
type OrderContact struct {
	ID        ID     `json:"id"`
	Email     string `json:"email"`
	FirstName string `json:"first_name"`
	LastName  string `json:"last_name"`
}

// OrderItem is one line of an order.
type OrderItem struct {
	ID          ID              `json:"id"`
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Price       Number          `json:"price"`
	Quantity    Number          `json:"quantity"`
	Type        string          `json:"type"`
	Product     *OrderProduct   `json:"product"`
	Raw         json.RawMessage `json:"-"`
}

// UnmarshalJSON keeps the raw JSON.
func (it *OrderItem) UnmarshalJSON(b []byte) error {
	type plain OrderItem
	var p plain
	raw, err := withRaw(b, &p)
	if err != nil {
		return fmt.Errorf("order item: %w", err)
	}
	*it = OrderItem(p)
	it.Raw = raw
	return nil
}

// OrderProduct is the product of an order item; list responses name it "name", create
// responses "product_name".
type OrderProduct struct {
	ID          ID     `json:"id"`
	Name        string `json:"name"`
	ProductName string `json:"product_name"`
	SKU         string `json:"sku"`
}

// OrderQuery filters GET /v1/orders.
type OrderQuery struct {
	ContactID, ProductID ID
	Paid                 *bool
	Since, Until         time.Time
	Order                string // "order_date" or "update_date"; default newest created first
	Limit, Offset        int
}

func (q OrderQuery) values() url.Values {
	v := url.Values{}
	if q.ContactID != 0 {
		v.Set("contact_id", q.ContactID.String())
	}
	if q.ProductID != 0 {
		v.Set("product_id", q.ProductID.String())
	}
	if q.Paid != nil {
		v.Set("paid", strconv.FormatBool(*q.Paid))
	}
	if !q.Since.IsZero() {
		v.Set("since", FormatTime(q.Since))
	}
	if !q.Until.IsZero() {
		v.Set("until", FormatTime(q.Until))
	}
	if q.Order != "" {
		v.Set("order", q.Order)
	}
	pageQuery(v, q.Limit, q.Offset)
	return v
}

const epOrders = "/v1/orders"

// ListOrders fetches one page of orders.
func (c *Client) ListOrders(ctx context.Context, q OrderQuery) (*Page[Order], error) {
	return listPage[Order](ctx, c, c.get(epOrders, epOrders, q.values()), "orders")
}

// Orders yields every order matching q.
func (c *Client) Orders(ctx context.Context, q OrderQuery) iter.Seq2[Order, error] {
	return walk[Order](ctx, c, c.get(epOrders, epOrders, q.values()), "orders")
}

// OrdersSince yields every order modified at or after since (all orders for a zero since), at
// least once, in no promised order. [V1] documents order=update_date as "most recent at the
// top" and does not say which date since filters on, so since is not sent: the walk pages by
// offset (see newestFirst) and stops once the listing has proven newest first and gone past
// since. q.Since, q.Order and q.Offset are replaced; q.Limit defaults to 1000.
func (c *Client) OrdersSince(ctx context.Context, since time.Time, q OrderQuery) iter.Seq2[Order, error] {
	if q.Limit <= 0 {
		q.Limit = 1000
	}
	build := func(offset int) request {
		qq := q
		qq.Since, qq.Order, qq.Offset = time.Time{}, "update_date", offset
		return c.get(epOrders, epOrders, qq.values())
	}
	return newestFirst(ctx, c, since, q.Limit, build, "orders", func(o Order) (time.Time, ID) { return o.ModificationDate.Time, o.ID })
}

// GetOrder fetches one order.
func (c *Client) GetOrder(ctx context.Context, id ID) (*Order, error) {
	var out Order
	if err := c.do(ctx, c.get("/v1/orders/{id}", fmt.Sprintf("/v1/orders/%d", id), nil), &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// OrderInput creates an order.
type OrderInput struct {
	ContactID        ID               `json:"contact_id"`
	OrderDate        Time             `json:"order_date"`
	OrderTitle       string           `json:"order_title"`
	OrderType        string           `json:"order_type"` // Offline or Online
	OrderItems       []OrderItemInput `json:"order_items"`
	LeadAffiliateID  ID               `json:"lead_affiliate_id,omitzero"`
	SalesAffiliateID ID               `json:"sales_affiliate_id,omitzero"`
	PromoCodes       []string         `json:"promo_codes,omitempty"`
}

// OrderItemInput is a line of a new order or an item added to one.
type OrderItemInput struct {
	ProductID   ID     `json:"product_id"`
	Quantity    int    `json:"quantity"`
	Price       string `json:"price,omitempty"` // [V1] types it as a string; empty: the product's price
	Description string `json:"description,omitempty"`
	ItemType    string `json:"item_type,omitempty"`
}

// CreateOrder creates an order. Not retried on network errors (a second order would follow).
func (c *Client) CreateOrder(ctx context.Context, in OrderInput) (*Order, error) {
	var out Order
	if err := c.do(ctx, request{method: http.MethodPost, endpoint: epOrders, path: epOrders, body: in}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteOrder deletes an order without payments.
func (c *Client) DeleteOrder(ctx context.Context, id ID) error {
	return c.do(ctx, request{method: http.MethodDelete, endpoint: "/v1/orders/{id}", path: fmt.Sprintf("/v1/orders/%d", id), idempotent: true}, nil)
}

// AddOrderItem adds an item to an order. Not retried on network errors.
func (c *Client) AddOrderItem(ctx context.Context, orderID ID, in OrderItemInput) (*OrderItem, error) {
	var out OrderItem
	r := request{method: http.MethodPost, endpoint: "/v1/orders/{id}/items", path: fmt.Sprintf("/v1/orders/%d/items", orderID), body: in}
	if err := c.do(ctx, r, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteOrderItem removes an item from an order.
func (c *Client) DeleteOrderItem(ctx context.Context, orderID, itemID ID) error {
	return c.do(ctx, request{method: http.MethodDelete, endpoint: "/v1/orders/{id}/items/{itemId}",
		path: fmt.Sprintf("/v1/orders/%d/items/%d", orderID, itemID), idempotent: true}, nil)
}

// Payment is a payment on an order's invoice.
type Payment struct {
	ID             ID              `json:"id"`
	Amount         Number          `json:"amount"`
	InvoiceID      ID              `json:"invoice_id"`
	PaymentID      ID              `json:"payment_id"`
	PayDate        Time            `json:"pay_date"`
	PayStatus      string          `json:"pay_status"`
	LastUpdated    Time            `json:"last_updated"`
	Note           string          `json:"note"`
	SkipCommission Bool            `json:"skip_commission"`
	Raw            json.RawMessage `json:"-"`
}

// UnmarshalJSON keeps the raw JSON.
func (p *Payment) UnmarshalJSON(b []byte) error {
	type plain Payment
	var pl plain
	raw, err := withRaw(b, &pl)
	if err != nil {
		return fmt.Errorf("payment: %w", err)
	}
	*p = Payment(pl)
	p.Raw = raw
	return nil
}

// OrderPayments lists an order's payments.
func (c *Client) OrderPayments(ctx context.Context, orderID ID) ([]Payment, error) {
	var out []Payment
	if err := c.do(ctx, c.get("/v1/orders/{id}/payments", fmt.Sprintf("/v1/orders/%d/payments", orderID), nil), &out); err != nil {
		return nil, err
	}
	return out, nil
}

// PaymentInput records a payment.
type PaymentInput struct {
	PaymentAmount      string `json:"payment_amount"` // a string in [V1]
	PaymentMethodType  string `json:"payment_method_type"`
	ChargeNow          bool   `json:"charge_now"`
	Date               Time   `json:"date,omitzero"`
	Notes              string `json:"notes,omitempty"`
	ApplyToCommissions bool   `json:"apply_to_commissions"`
	CreditCardID       ID     `json:"credit_card_id,omitzero"`
	PaymentGatewayID   string `json:"payment_gateway_id,omitempty"`
}

// PaymentResult answers CreatePayment.
type PaymentResult struct {
	ID            ID              `json:"id"`
	InvoiceID     ID              `json:"invoice_id"`
	PaymentAmount Number          `json:"payment_amount"`
	PaymentStatus string          `json:"payment_status"`
	TransactionID ID              `json:"transaction_id"`
	Raw           json.RawMessage `json:"-"`
}

// UnmarshalJSON keeps the raw JSON.
func (p *PaymentResult) UnmarshalJSON(b []byte) error {
	type plain PaymentResult
	var pl plain
	raw, err := withRaw(b, &pl)
	if err != nil {
		return fmt.Errorf("payment result: %w", err)
	}
	*p = PaymentResult(pl)
	p.Raw = raw
	return nil
}

// CreatePayment records a payment on an order. Never retried on network errors: it moves money.
func (c *Client) CreatePayment(ctx context.Context, orderID ID, in PaymentInput) (*PaymentResult, error) {
	var out PaymentResult
	r := request{method: http.MethodPost, endpoint: "/v1/orders/{id}/payments", path: fmt.Sprintf("/v1/orders/%d/payments", orderID), body: in}
	if err := c.do(ctx, r, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
