package sandbox

import (
	"fmt"
	"net/url"
	"testing"
	"time"
)

type orderList struct {
	Orders []map[string]any
	Count  any
}

// Orders list newest first, as [V1] documents, in every order mode; OrdersOldestFirst reverses.
func TestProfileOrdersDirection(t *testing.T) {
	t.Parallel()
	srv, clock := start(t, Options{Contacts: 30, Seed: 3})
	for range 3 {
		clock.Advance(time.Second)
		if _, err := srv.CreateOrder(map[string]any{"contact_id": 2, "order_title": "x", "order_type": "Offline",
			"order_items": []any{map[string]any{"product_id": 1, "quantity": 1}}}); err != nil {
			t.Fatal(err)
		}
	}
	c := newClient(t, srv, false)
	check := func(oldestFirst bool) {
		t.Helper()
		for _, mode := range []struct{ order, field string }{{"", "creation_date"}, {"update_date", "modification_date"}, {"order_date", "order_date"}} {
			var list orderList
			path := "/crm/rest/v1/orders?limit=1000"
			if mode.order != "" {
				path += "&order=" + mode.order
			}
			c.json("GET", path, nil, 200, &list)
			if len(list.Orders) < 3 {
				t.Fatalf("%d orders", len(list.Orders))
			}
			for i := 1; i < len(list.Orders); i++ {
				a, b := list.Orders[i-1][mode.field].(string), list.Orders[i][mode.field].(string)
				if a != b && (a < b) != oldestFirst {
					t.Fatalf("order=%q oldestFirst=%v: %s then %s", mode.order, oldestFirst, a, b)
				}
			}
		}
	}
	check(false)
	c.json("PUT", "/_sandbox/profile", map[string]any{"OrdersOldestFirst": true}, 200, nil)
	if !srv.Profile().OrdersOldestFirst {
		t.Fatal("test API did not switch the profile")
	}
	check(true)
}

// SecondStamps, bulk edits and SinceExclusive: a bulk edit shares one stamp, whole seconds;
// since=<that stamp> finds them all when inclusive and none when exclusive.
func TestProfileStampsAndSince(t *testing.T) {
	t.Parallel()
	srv, clock := start(t, Options{Contacts: 40, Seed: 4})
	c := newClient(t, srv, false)
	c.json("PUT", "/_sandbox/profile", map[string]any{"name": "hardest"}, 200, nil)
	clock.Advance(1500 * time.Millisecond)
	c.json("POST", "/_sandbox/contacts/bulk", map[string]any{"set": map[string]any{"job_title": "Bulk"}}, 204, nil)
	var list struct {
		Contacts []map[string]any
		Count    int
	}
	c.json("GET", "/crm/rest/v1/contacts?limit=1000&order=last_updated&optional_properties=job_title", nil, 200, &list)
	stamps := map[string]int{}
	for _, x := range list.Contacts {
		stamps[x["last_updated"].(string)]++
		if x["job_title"] != "Bulk" {
			t.Fatalf("contact %v not edited", x["id"])
		}
	}
	if len(stamps) != 1 {
		t.Fatalf("bulk edit stamps: %v", stamps)
	}
	var stamp string
	for s := range stamps {
		stamp = s
	}
	if ts, _ := time.Parse(time.RFC3339Nano, stamp); !ts.Equal(ts.Truncate(time.Second)) {
		t.Fatalf("stamp %s is not whole seconds", stamp)
	}
	c.json("GET", "/crm/rest/v1/contacts?limit=1&since="+url.QueryEscape(stamp), nil, 200, &list)
	if list.Count != 0 {
		t.Fatalf("exclusive since=%s matched %d", stamp, list.Count)
	}
	c.json("PUT", "/_sandbox/profile", map[string]any{"name": "documented"}, 200, nil)
	c.json("GET", "/crm/rest/v1/contacts?limit=1&since="+url.QueryEscape(stamp), nil, 200, &list)
	if list.Count != 40 {
		t.Fatalf("inclusive since=%s matched %d, want 40", stamp, list.Count)
	}
	c.json("PUT", "/_sandbox/profile", map[string]any{"Bogus": true}, 400, nil)
	c.json("PUT", "/_sandbox/profile", map[string]any{"name": "bogus"}, 400, nil)
}

// TagsKeepStamp: a tag applied keeps the contact's last_updated; the tag list alone changes.
func TestProfileTagsKeepStamp(t *testing.T) {
	t.Parallel()
	for _, keep := range []bool{false, true} {
		srv, clock := start(t, Options{Contacts: 5, Seed: 5, Profile: Profile{TagsKeepStamp: keep}})
		c := newClient(t, srv, false)
		var before, after map[string]any
		c.json("GET", "/crm/rest/v1/contacts/1", nil, 200, &before)
		clock.Advance(time.Second)
		var tags struct{ Tags []map[string]any }
		c.json("GET", "/crm/rest/v1/tags?limit=1000", nil, 200, &tags)
		var tagID int64
		have := map[int64]bool{}
		for _, x := range before["tag_ids"].([]any) {
			have[num(x)] = true
		}
		for _, tg := range tags.Tags {
			if !have[num(tg["id"])] {
				tagID = num(tg["id"])
				break
			}
		}
		if err := srv.ApplyTag(1, tagID); err != nil {
			t.Fatal(err)
		}
		c.json("GET", "/crm/rest/v1/contacts/1", nil, 200, &after)
		if same := before["last_updated"] == after["last_updated"]; same != keep {
			t.Fatalf("TagsKeepStamp=%v: last_updated %v -> %v", keep, before["last_updated"], after["last_updated"])
		}
		if fmt.Sprint(before["tag_ids"]) == fmt.Sprint(after["tag_ids"]) {
			t.Fatalf("tag %d not applied: %v", tagID, after["tag_ids"])
		}
	}
}

// A payment announces itself with invoice.payment.add; order.edit and a new modification_date
// only unless PaymentKeepsOrderStamp.
func TestProfilePaymentEvents(t *testing.T) {
	t.Parallel()
	for _, keep := range []bool{false, true} {
		srv, clock := start(t, Options{Contacts: 5, Seed: 6, Profile: Profile{PaymentKeepsOrderStamp: keep}})
		id, err := srv.CreateOrder(map[string]any{"contact_id": 2, "order_title": "x", "order_type": "Offline",
			"order_items": []any{map[string]any{"product_id": 1, "quantity": 1, "price": "10"}}})
		if err != nil {
			t.Fatal(err)
		}
		before, _ := srv.store.getOrder(id)
		clock.Advance(time.Second)
		evs := captureEvents(srv)
		if err := srv.PayOrder(id, 4); err != nil {
			t.Fatal(err)
		}
		after, _ := srv.store.getOrder(id)
		if after["total_paid"] != 4.0 {
			t.Fatalf("total_paid %v", after["total_paid"])
		}
		if same := before["modification_date"] == after["modification_date"]; same != keep {
			t.Fatalf("PaymentKeepsOrderStamp=%v: modification_date %v -> %v", keep, before["modification_date"], after["modification_date"])
		}
		keys := map[string]bool{}
		for _, ev := range *evs {
			keys[ev.key] = ev.id == id
		}
		if !keys["invoice.payment.add"] || keys["order.edit"] == keep {
			t.Fatalf("PaymentKeepsOrderStamp=%v: events %v", keep, *evs)
		}
	}
}

// captureEvents records what the store publishes from now on (besides queueing it).
func captureEvents(srv *Server) *[]event {
	var out []event
	pub := srv.store.publish
	srv.store.mu.Lock()
	srv.store.publish = func(evs []event) { out = append(out, evs...); pub(evs) }
	srv.store.mu.Unlock()
	return &out
}
