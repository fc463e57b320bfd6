package sandbox

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

var (
	givenNames  = []string{"Ada", "Ben", "Chloe", "Dev", "Elena", "Femi", "Grace", "Hiro", "Ines", "Jonas", "Kira", "Luis", "Maya", "Noah", "Olga", "Priya", "Quinn", "Rosa", "Sami", "Tess"}
	familyNames = []string{"Okafor", "Lindqvist", "Moreau", "Tanaka", "Schmidt", "Novak", "Haddad", "Costa", "Kowalski", "Nguyen", "Brennan", "Ferreira", "Ivanova", "Mensah", "Patel", "Reyes"}
	cities      = []struct{ city, region, zip string }{{"Phoenix", "AZ", "85001"}, {"Austin", "TX", "73301"}, {"Denver", "CO", "80014"}, {"Boise", "ID", "83701"}, {"Portland", "OR", "97201"}}
	tagNames    = [][]string{{"Lead", "Customer", "VIP", "Churned"}, {"Newsletter", "Webinar", "Ebook", "Trial"}, {"Referral", "Partner", "Event", "Cold"}}
)

// generate seeds a deterministic account: the same seed and count give the same data. It writes
// the store directly (no events: nobody can be subscribed yet) and is linear in count, so
// 100 000 contacts take a second or two.
func generate(s *store, seed int64, count int) {
	rnd := rand.New(rand.NewPCG(uint64(seed), 0x6e6))
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.stamp.clock.Now().UTC().Truncate(time.Millisecond)

	for i, cat := range []string{"Lifecycle", "Source", "Channel"} {
		c := &tagCategory{ID: s.nextID("category"), Name: cat, Description: cat + " tags", created: now}
		s.categories[c.ID] = c
		for _, name := range tagNames[i] {
			t := &tag{id: s.nextID("tag"), name: name, category: c.ID, contacts: map[int64]time.Time{}, created: now, updated: now}
			s.tags[t.id] = t
			s.tagIDs = append(s.tagIDs, t.id)
		}
	}
	fText := s.addCustomField("Favourite colour", "Text")
	fNum := s.addCustomField("Seats", "WholeNumber")
	fDate := s.addCustomField("Renewal date", "Date")
	s.addCustomField("Notes for sales", "TextArea")
	cycles := []string{"MONTH", "YEAR", "WEEK"}
	for i := 1; i <= 8; i++ {
		p := &product{ID: s.nextID("product"), Name: fmt.Sprintf("Product %d", i), Price: float64(rnd.IntN(20000)+500) / 100, SKU: fmt.Sprintf("SKU-%03d", i)}
		p.created = s.stamp.clock.Now() // not a stamp: generated data keeps its clock
		p.updated = p.created
		if i%2 == 0 {
			p.Plans = []subscriptionPlan{{ID: s.nextID("plan"), Cycle: cycles[i%3], Frequency: 1, Price: p.Price}}
		}
		s.products[p.ID] = p
	}

	// Records are spread over the past, one minute apart, so since/until have something to cut.
	const step = time.Minute
	start := now.Add(-time.Duration(count+60) * step)
	colours := []string{"red", "green", "blue", "teal", "amber"}
	for i := 0; i < count; i++ {
		given, family := givenNames[rnd.IntN(len(givenNames))], familyNames[rnd.IntN(len(familyNames))]
		created := start.Add(time.Duration(i) * step)
		c := &contact{id: s.nextID("contact"), created: created, tags: map[int64]time.Time{}, f: map[string]any{
			"given_name": given, "family_name": family,
			"email_addresses": []any{map[string]any{"email": fmt.Sprintf("%s.%s.%d@example.com", strings.ToLower(given), strings.ToLower(family), i+1), "field": "EMAIL1"}},
			"phone_numbers":   []any{map[string]any{"number": fmt.Sprintf("555-%04d", rnd.IntN(10000)), "field": "PHONE1", "type": "Mobile"}},
			"custom_fields": []any{
				map[string]any{"id": fText.ID, "content": colours[rnd.IntN(len(colours))]},
				map[string]any{"id": fNum.ID, "content": rnd.IntN(50) + 1},
				map[string]any{"id": fDate.ID, "content": created.AddDate(1, 0, 0).Format(dateOnly)},
			},
			"job_title": []string{"Owner", "Manager", "Engineer", "Buyer"}[rnd.IntN(4)],
		}}
		if rnd.IntN(2) == 0 {
			loc := cities[rnd.IntN(len(cities))]
			c.f["addresses"] = []any{map[string]any{"field": "BILLING", "line1": fmt.Sprintf("%d Main St", rnd.IntN(900)+1),
				"locality": loc.city, "region": loc.region, "zip_code": loc.zip, "country_code": "USA"}}
		}
		// last_updated within the step keeps every stamp distinct and ordered like the ids.
		c.updated = created.Add(time.Duration(rnd.IntN(int(step/time.Millisecond)-1)+1) * time.Millisecond)
		for n := rnd.IntN(4); n > 0; n-- {
			tid := s.tagIDs[rnd.IntN(len(s.tagIDs))]
			c.tags[tid] = c.updated
			s.tags[tid].contacts[c.id] = c.updated
		}
		c.listJSON, _ = json.Marshal(c.render(nil))
		s.contacts[c.id] = c
		s.contactIDs = append(s.contactIDs, c.id)
		if rnd.IntN(3) == 0 {
			s.generateOrder(rnd, c)
		}
		if rnd.IntN(10) == 0 {
			s.generateSubscription(rnd, c)
		}
	}
	s.stamp.last = now // later changes stamp after everything generated
}

func (s *store) generateOrder(rnd *rand.Rand, c *contact) {
	o := &order{id: s.nextID("order"), contactID: c.id, title: fmt.Sprintf("Order for %s", c.str("given_name")),
		orderType: []string{"Online", "Offline"}[rnd.IntN(2)], orderDate: c.created, created: c.created, updated: c.updated}
	for n := rnd.IntN(3) + 1; n > 0; n-- {
		p := s.products[int64(rnd.IntN(len(s.products))+1)]
		o.items = append(o.items, orderItem{id: s.nextID("orderItem"), productID: p.ID, quantity: rnd.IntN(3) + 1, price: p.Price, itemType: "PRODUCT"})
	}
	if rnd.IntN(2) == 0 {
		o.payments = append(o.payments, payment{id: s.nextID("payment"), amount: o.total(), date: c.updated, method: "CREDIT_CARD"})
	}
	s.orders[o.id] = o
	s.orderIDs = append(s.orderIDs, o.id)
}

func (s *store) generateSubscription(rnd *rand.Rand, c *contact) {
	var plans []*subscriptionPlan
	var prods []*product
	for id := int64(1); id <= int64(len(s.products)); id++ {
		p := s.products[id]
		for i := range p.Plans {
			plans, prods = append(plans, &p.Plans[i]), append(prods, p)
		}
	}
	k := rnd.IntN(len(plans))
	sub := &subscription{id: s.nextID("subscription"), contactID: c.id, productID: prods[k].ID, planID: plans[k].ID,
		active: rnd.IntN(5) != 0, autoCharge: true, billingAmount: plans[k].Price, cycle: plans[k].Cycle,
		frequency: plans[k].Frequency, quantity: 1, start: c.created.Truncate(24 * time.Hour), updated: c.updated}
	sub.nextBill = sub.start.AddDate(0, 1, 0)
	s.subs[sub.id] = sub
	s.subIDs = append(s.subIDs, sub.id)
}
