package sandbox

import (
	"fmt"
	"strconv"
	"time"
)

// subscription is a recurring-billing subscription. v1 serves it without any timestamp; the
// v2 paths add modification_time, the only way Keap offers to see when one changed.
type subscription struct {
	id, contactID, productID, planID int64
	active, autoCharge, allowTax     bool
	billingAmount                    float64
	cycle                            string
	frequency, quantity              int
	start, nextBill                  time.Time
	updated                          time.Time
	custom                           customValues // v2 serves them; keapsync does not write subscriptions
}

const dateOnly = "2006-01-02"

func (sub *subscription) v1() map[string]any {
	return map[string]any{
		"id": sub.id, "contact_id": sub.contactID, "product_id": sub.productID, "subscription_plan_id": sub.planID,
		"active": sub.active, "auto_charge": sub.autoCharge, "allow_tax": sub.allowTax,
		"billing_amount": sub.billingAmount, "billing_cycle": sub.cycle, "billing_frequency": sub.frequency,
		"quantity": sub.quantity, "start_date": sub.start.Format(dateOnly), "next_bill_date": sub.nextBill.Format(dateOnly),
		"use_default_payment_gateway": true,
	}
}

// v2 renders [V2]'s Subscription: ids are strings there.
func (sub *subscription) v2() map[string]any {
	id := func(v int64) string { return strconv.FormatInt(v, 10) }
	return map[string]any{
		"id": id(sub.id), "contact_id": id(sub.contactID), "product_id": id(sub.productID),
		"subscription_plan_id": id(sub.planID), "active": sub.active, "auto_charge": sub.autoCharge,
		"allow_tax": sub.allowTax, "billing_amount": sub.billingAmount, "billing_cycle": sub.cycle,
		"billing_frequency": sub.frequency, "quantity": sub.quantity,
		"start_date": sub.start.Format(dateOnly), "next_bill_date": sub.nextBill.Format(dateOnly),
		"modification_time": keapTime(sub.updated),
		"custom_fields":     sub.custom.v2(),
	}
}

type subscriptionInput struct {
	ContactID     int64    `json:"contact_id"`
	PlanID        int64    `json:"subscription_plan_id"`
	Quantity      int      `json:"quantity"`
	BillingAmount *float64 `json:"billing_amount"`
	FirstBillDate string   `json:"first_bill_date"`
	AutoCharge    bool     `json:"auto_charge"`
	AllowTax      bool     `json:"allow_tax"`
}

// createSubscription needs a plan: the sandbox has no plan-less subscriptions, since billing
// cycle and product come from the plan.
func (s *store) createSubscription(in subscriptionInput) (*subscription, error) {
	var out *subscription
	err := s.write(func() ([]event, error) {
		if s.contacts[in.ContactID] == nil {
			return nil, badRequest(fmt.Sprintf("Contact with ID %d not found", in.ContactID))
		}
		prod, plan := s.findPlan(in.PlanID)
		if plan == nil {
			return nil, badRequest(fmt.Sprintf("Subscription plan with ID %d not found", in.PlanID))
		}
		now := s.stamp.next()
		sub := &subscription{id: s.nextID("subscription"), contactID: in.ContactID, productID: prod.ID, planID: plan.ID,
			active: true, autoCharge: in.AutoCharge, allowTax: in.AllowTax, billingAmount: plan.Price,
			cycle: plan.Cycle, frequency: plan.Frequency, quantity: max(in.Quantity, 1), updated: now}
		if in.BillingAmount != nil {
			sub.billingAmount = *in.BillingAmount
		}
		sub.start = now.Truncate(24 * time.Hour)
		if in.FirstBillDate != "" {
			d, err := time.Parse(dateOnly, in.FirstBillDate)
			if err != nil {
				return nil, badRequest("Invalid first_bill_date: " + in.FirstBillDate)
			}
			sub.start = d
		}
		sub.nextBill = sub.start
		s.subs[sub.id] = sub
		s.subIDs = append(s.subIDs, sub.id)
		out = sub
		return []event{subEvent("subscription.add", sub)}, nil
	})
	return out, err
}

func subEvent(key string, sub *subscription) event {
	return event{key: key, objectType: "subscription", id: sub.id, apiPath: fmt.Sprintf("/v2/subscriptions/%d", sub.id), at: sub.updated}
}

func (s *store) findPlan(id int64) (*product, *subscriptionPlan) {
	for _, p := range s.products {
		for i := range p.Plans {
			if p.Plans[i].ID == id {
				return p, &p.Plans[i]
			}
		}
	}
	return nil, nil
}

// updateSubscription changes a subscription as a person in Keap would (the v1 API cannot).
func (s *store) updateSubscription(id int64, fn func(sub *subscription)) (*subscription, error) {
	var out *subscription
	err := s.write(func() ([]event, error) {
		cur := s.subs[id]
		if cur == nil {
			return nil, notFound(fmt.Sprintf("Subscription with ID %d not found", id))
		}
		next := *cur
		fn(&next)
		next.updated = s.stamp.next()
		s.subs[id] = &next
		out = &next
		return []event{subEvent("subscription.edit", &next)}, nil
	})
	return out, err
}

func (s *store) listSubs(contactID int64) []*subscription {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []*subscription
	for _, id := range s.subIDs {
		if sub := s.subs[id]; contactID == 0 || sub.contactID == contactID {
			out = append(out, sub)
		}
	}
	return out
}
