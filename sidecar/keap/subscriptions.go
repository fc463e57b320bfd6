package keap

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strconv"
)

// Subscription is a recurring-billing subscription, from v1 or v2. v1 has no timestamp, no get
// by id and no update; v2 adds ModificationTime, the only way to see when one changed, so the
// sync reads subscriptions through v2 (ListSubscriptionsV2, GetSubscriptionV2).
type Subscription struct {
	ID                 ID              `json:"id"` // a string in v2
	ContactID          ID              `json:"contact_id"`
	ProductID          ID              `json:"product_id"`
	SubscriptionPlanID ID              `json:"subscription_plan_id"`
	Active             Bool            `json:"active"`
	BillingAmount      Number          `json:"billing_amount"`
	BillingCycle       string          `json:"billing_cycle"`
	BillingFrequency   Number          `json:"billing_frequency"`
	Quantity           Number          `json:"quantity"`
	StartDate          Time            `json:"start_date"`
	EndDate            Time            `json:"end_date"`
	NextBillDate       Time            `json:"next_bill_date"`
	AutoCharge         Bool            `json:"auto_charge"`
	ModificationTime   Time            `json:"modification_time"` // v2 only
	Raw                json.RawMessage `json:"-"`
}

// UnmarshalJSON decodes liberally and keeps the raw JSON.
func (s *Subscription) UnmarshalJSON(b []byte) error {
	type plain Subscription
	var p plain
	raw, err := withRaw(b, &p)
	if err != nil {
		return fmt.Errorf("subscription: %w", err)
	}
	*s = Subscription(p)
	s.Raw = raw
	return nil
}

// SubscriptionQuery filters GET /v1/subscriptions.
type SubscriptionQuery struct {
	ContactID     ID
	Limit, Offset int
}

func (q SubscriptionQuery) values() url.Values {
	v := url.Values{}
	if q.ContactID != 0 {
		v.Set("contact_id", q.ContactID.String())
	}
	pageQuery(v, q.Limit, q.Offset)
	return v
}

const epSubs = "/v1/subscriptions"

// ListSubscriptions fetches one v1 page.
func (c *Client) ListSubscriptions(ctx context.Context, q SubscriptionQuery) (*Page[Subscription], error) {
	return listPage[Subscription](ctx, c, c.get(epSubs, epSubs, q.values()), "subscriptions")
}

// Subscriptions yields every v1 subscription matching q.
func (c *Client) Subscriptions(ctx context.Context, q SubscriptionQuery) iter.Seq2[Subscription, error] {
	return walk[Subscription](ctx, c, c.get(epSubs, epSubs, q.values()), "subscriptions")
}

// SubscriptionInput creates a subscription.
type SubscriptionInput struct {
	ContactID          ID       `json:"contact_id"`
	SubscriptionPlanID ID       `json:"subscription_plan_id,omitzero"`
	Quantity           int      `json:"quantity,omitempty"`
	BillingAmount      *float64 `json:"billing_amount,omitempty"`
	FirstBillDate      string   `json:"first_bill_date,omitempty"` // YYYY-MM-DD
	AutoCharge         *bool    `json:"auto_charge,omitempty"`
	AllowTax           bool     `json:"allow_tax,omitempty"`
	AllowDuplicate     bool     `json:"allow_duplicate,omitempty"`
	CreditCardID       ID       `json:"credit_card_id,omitzero"`
	SaleAffiliateID    ID       `json:"sale_affiliate_id,omitzero"`
}

// CreateSubscription creates a subscription (v1). Not retried on network errors.
func (c *Client) CreateSubscription(ctx context.Context, in SubscriptionInput) (*Subscription, error) {
	var out Subscription
	if err := c.do(ctx, request{method: http.MethodPost, endpoint: epSubs, path: epSubs, body: in}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// PageV2 is one page of a v2 list: items and the opaque token of the next page ("" at the end).
type PageV2[T any] struct {
	Items         []T
	NextPageToken string
	Bad           []*ItemError // items that do not decode (see Page.Bad)
}

// SubscriptionV2Query lists v2 subscriptions.
type SubscriptionV2Query struct {
	ContactID ID
	OrderBy   string // "id" or "modification_time", optionally followed by " asc" or " desc"
	PageSize  int    // at most 1000
	PageToken string
}

const epSubsV2 = "/v2/subscriptions"

// ListSubscriptionsV2 fetches one v2 page.
func (c *Client) ListSubscriptionsV2(ctx context.Context, q SubscriptionV2Query) (*PageV2[Subscription], error) {
	v := url.Values{}
	if q.ContactID != 0 {
		v.Set("filter", "contact_id=="+q.ContactID.String())
	}
	if q.OrderBy != "" {
		v.Set("order_by", q.OrderBy)
	}
	if q.PageSize > 0 {
		v.Set("page_size", strconv.Itoa(q.PageSize))
	}
	if q.PageToken != "" {
		v.Set("page_token", q.PageToken)
	}
	var env struct {
		Subscriptions []json.RawMessage `json:"subscriptions"`
		NextPageToken string            `json:"next_page_token"`
	}
	r := c.get(epSubsV2, epSubsV2, v)
	if err := c.do(ctx, r, &env); err != nil {
		return nil, err
	}
	p := &PageV2[Subscription]{NextPageToken: env.NextPageToken}
	p.Items, p.Bad = decodeItems[Subscription](r, env.Subscriptions)
	return p, nil
}

// SubscriptionsV2 yields every v2 subscription matching q, following page tokens.
func (c *Client) SubscriptionsV2(ctx context.Context, q SubscriptionV2Query) iter.Seq2[Subscription, error] {
	return func(yield func(Subscription, error) bool) {
		seen := map[string]bool{}
		for {
			p, err := c.ListSubscriptionsV2(ctx, q)
			if err != nil {
				yield(Subscription{}, err)
				return
			}
			for _, s := range p.Items {
				if !yield(s, nil) {
					return
				}
			}
			if !yieldBad(p.Bad, yield) {
				return
			}
			if p.NextPageToken == "" || len(p.Items)+len(p.Bad) == 0 {
				return
			}
			if seen[p.NextPageToken] {
				yield(Subscription{}, fmt.Errorf("keap GET %s: page token repeats", epSubsV2))
				return
			}
			seen[p.NextPageToken] = true
			q.PageToken = p.NextPageToken
		}
	}
}

// GetSubscriptionV2 fetches one subscription by id (v2; v1 cannot).
func (c *Client) GetSubscriptionV2(ctx context.Context, id ID) (*Subscription, error) {
	var out Subscription
	if err := c.do(ctx, c.get("/v2/subscriptions/{id}", fmt.Sprintf("/v2/subscriptions/%d", id), nil), &out); err != nil {
		return nil, err
	}
	return &out, nil
}
