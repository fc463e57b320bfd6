package sandbox

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

type payload struct {
	EventKey   string `json:"event_key"`
	ObjectType string `json:"object_type"`
	ObjectKeys []struct {
		ID        int64  `json:"id"`
		APIURL    string `json:"apiUrl"`
		Timestamp string `json:"timestamp"`
	} `json:"object_keys"`
}

// receiver is a hook endpoint on loopback. It echoes X-Hook-Secret when echo is set and answers
// deliveries with status (default 200).
type receiver struct {
	*httptest.Server
	mu         sync.Mutex
	echo       bool
	status     int
	handshakes int
	got        []payload
	secretSeen bool // a delivery carried X-Hook-Secret (it must not)
}

func newReceiver(t *testing.T, echo bool) *receiver {
	r := &receiver{echo: echo, status: 200}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		defer r.mu.Unlock()
		if s := req.Header.Get("X-Hook-Secret"); s != "" {
			r.handshakes++
			if r.echo {
				w.Header().Set("X-Hook-Secret", s)
			}
			return
		}
		var p payload
		if err := json.NewDecoder(req.Body).Decode(&p); err != nil {
			t.Errorf("delivery body: %v", err)
		}
		r.got = append(r.got, p)
		w.WriteHeader(r.status)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) deliveries() []payload {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]payload(nil), r.got...)
}

func (r *receiver) set(fn func(r *receiver)) {
	r.mu.Lock()
	fn(r)
	r.mu.Unlock()
}

func subscribe(t *testing.T, c *client, event, url string) Hook {
	t.Helper()
	var h Hook
	c.json("POST", "/crm/rest/v1/hooks", map[string]string{"eventKey": event, "hookUrl": url}, 200, &h)
	return h
}

func TestHookHandshake(t *testing.T) {
	t.Parallel()
	srv, _ := start(t, Options{Contacts: 1})
	c := newClient(t, srv, false)
	good, bad := newReceiver(t, true), newReceiver(t, false)
	if h := subscribe(t, c, "contact.add", good.URL); h.Status != StatusVerified {
		t.Fatalf("echoing receiver: %s", h.Status)
	}
	h := subscribe(t, c, "contact.edit", bad.URL)
	if h.Status != StatusUnverified {
		t.Fatalf("silent receiver: %s", h.Status)
	}
	// delayedVerify: a wrong secret is refused, the one the receiver saw is accepted.
	newClient(t, srv, true).json("POST", "/crm/rest/v1/hooks/"+h.Key+"/delayedVerify", nil, 400, nil)
	cc := *c
	cc.header = http.Header{"X-Keap-Api-Key": c.header["X-Keap-Api-Key"], "X-Hook-Secret": {"wrong"}}
	cc.json("POST", "/crm/rest/v1/hooks/"+h.Key+"/delayedVerify", nil, 400, nil)
	srv.hooks.mu.Lock()
	secret := srv.hooks.hooks[h.Key].secret // what the receiver was sent
	srv.hooks.mu.Unlock()
	cc.header["X-Hook-Secret"] = []string{secret}
	var v Hook
	cc.json("POST", "/crm/rest/v1/hooks/"+h.Key+"/delayedVerify", nil, 200, &v)
	if v.Status != StatusVerified {
		t.Fatalf("delayedVerify: %s", v.Status)
	}
	// CRUD.
	var all []Hook
	c.json("GET", "/crm/rest/v1/hooks", nil, 200, &all)
	if len(all) != 2 {
		t.Fatalf("hooks %v", all)
	}
	c.json("PUT", "/crm/rest/v1/hooks/"+h.Key, map[string]string{"eventKey": "contact.delete", "hookUrl": good.URL}, 200, &v)
	if v.EventKey != "contact.delete" || v.Status != StatusVerified {
		t.Fatalf("update %+v", v)
	}
	c.json("GET", "/crm/rest/v1/hooks/"+h.Key, nil, 200, &v)
	c.json("DELETE", "/crm/rest/v1/hooks/"+h.Key, nil, 204, nil)
	c.json("GET", "/crm/rest/v1/hooks/"+h.Key, nil, 404, nil)
	var keys []string
	c.json("GET", "/crm/rest/v1/hooks/event_keys", nil, 200, &keys)
	if len(keys) != len(EventKeys) {
		t.Fatalf("event keys %v", keys)
	}
	raw := newClient(t, srv, true)
	raw.json("POST", "/crm/rest/v1/hooks", map[string]string{"eventKey": "contact.explode", "hookUrl": good.URL}, 400, nil)
	raw.json("POST", "/crm/rest/v1/hooks", map[string]string{"eventKey": "contact.add", "hookUrl": "https://example.com/h"}, 400, nil)
}

func TestHookBatching(t *testing.T) {
	t.Parallel()
	srv, clock := start(t, Options{HookDelay: 45 * time.Second})
	c := newClient(t, srv, false)
	rcv := newReceiver(t, true)
	subscribe(t, c, "contact.add", rcv.URL)
	for i := 0; i < 2500; i++ {
		if _, err := srv.CreateContact(map[string]any{"email_addresses": []any{map[string]any{"email": fmt.Sprintf("b%d@x.io", i), "field": "EMAIL1"}}}); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(44 * time.Second)
	settle(t, srv)
	if n := len(rcv.deliveries()); n != 0 {
		t.Fatalf("%d deliveries before the delay passed", n)
	}
	clock.Advance(time.Second)
	settle(t, srv)
	got := rcv.deliveries()
	sizes, seen := []int{}, map[int64]bool{}
	for _, p := range got {
		if p.EventKey != "contact.add" || p.ObjectType != "contact" {
			t.Fatalf("payload %+v", p)
		}
		sizes = append(sizes, len(p.ObjectKeys))
		for _, k := range p.ObjectKeys {
			if seen[k.ID] || k.APIURL != fmt.Sprintf("%s/crm/rest/v1/contacts/%d", srv.URL(), k.ID) || !keapTimeRE.MatchString(k.Timestamp) {
				t.Fatalf("object key %+v (duplicate=%v)", k, seen[k.ID])
			}
			seen[k.ID] = true
		}
	}
	if fmt.Sprint(sizes) != "[1000 1000 500]" || len(seen) != 2500 {
		t.Fatalf("batch sizes %v, %d ids", sizes, len(seen))
	}
}

func TestHookEventsForEveryChange(t *testing.T) {
	t.Parallel()
	srv, _ := start(t, Options{Contacts: 3})
	c := newClient(t, srv, false)
	rcv := newReceiver(t, true)
	for _, k := range []string{"contact.add", "contact.edit", "contact.delete", "contactGroup.applied", "contactGroup.removed",
		"order.add", "order.edit", "order.delete", "subscription.add", "subscription.edit", "contactGroup.add"} {
		subscribe(t, c, k, rcv.URL)
	}
	var ct, o map[string]any
	c.json("POST", "/crm/rest/v1/contacts", map[string]any{"email_addresses": []any{map[string]any{"email": "e@x.io", "field": "EMAIL1"}}}, 201, &ct)
	id := num(ct["id"])
	c.json("PATCH", fmt.Sprintf("/crm/rest/v1/contacts/%d", id), map[string]any{"given_name": "E"}, 200, nil)
	c.json("POST", fmt.Sprintf("/crm/rest/v1/contacts/%d/tags", id), map[string]any{"tagIds": []int64{1}}, 200, nil)
	c.json("DELETE", fmt.Sprintf("/crm/rest/v1/contacts/%d/tags/1", id), nil, 204, nil)
	c.json("POST", "/crm/rest/v1/orders", map[string]any{"contact_id": id, "order_date": "2026-02-01T00:00:00Z", "order_title": "t",
		"order_type": "Online", "order_items": []any{map[string]any{"product_id": 1, "quantity": 1}}}, 201, &o)
	c.json("POST", fmt.Sprintf("/crm/rest/v1/orders/%d/items", num(o["id"])), map[string]any{"product_id": 1, "quantity": 1}, 201, nil)
	c.json("DELETE", fmt.Sprintf("/crm/rest/v1/orders/%d", num(o["id"])), nil, 204, nil)
	c.json("POST", "/crm/rest/v1/subscriptions", map[string]any{"contact_id": id, "subscription_plan_id": 1}, 201, nil)
	c.json("POST", "/crm/rest/v1/tags", map[string]any{"name": "N"}, 200, nil)
	// A person's edit through the test surface fires hooks too.
	c.json("PATCH", "/_sandbox/subscriptions/1", map[string]any{"active": false}, 200, nil)
	c.json("DELETE", fmt.Sprintf("/_sandbox/contacts/%d", id), nil, 204, nil)
	settle(t, srv)
	got := map[string]int{}
	for _, p := range rcv.deliveries() {
		got[p.EventKey] += len(p.ObjectKeys)
	}
	want := map[string]int{"contact.add": 1, "contact.edit": 1, "contact.delete": 1, "contactGroup.applied": 1, "contactGroup.removed": 1,
		"order.add": 1, "order.edit": 1, "order.delete": 1, "subscription.add": 1, "subscription.edit": 1, "contactGroup.add": 1}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("events %v, want %v", got, want)
	}
}

func TestHookRetriesThenInactive(t *testing.T) {
	t.Parallel()
	backoff := []time.Duration{time.Minute, 5 * time.Minute, 30 * time.Minute}
	srv, clock := start(t, Options{RetryBackoff: backoff})
	c := newClient(t, srv, false)
	rcv := newReceiver(t, true)
	h := subscribe(t, c, "contact.add", rcv.URL)
	rcv.set(func(r *receiver) { r.status = 503 })
	if _, err := srv.CreateContact(map[string]any{"email_addresses": []any{map[string]any{"email": "r@x.io", "field": "EMAIL1"}}}); err != nil {
		t.Fatal(err)
	}
	settle(t, srv)
	for i, wait := range backoff {
		if n := len(rcv.deliveries()); n != i+1 {
			t.Fatalf("after %d waits: %d attempts", i, n)
		}
		clock.Advance(wait - time.Second)
		settle(t, srv)
		if n := len(rcv.deliveries()); n != i+1 {
			t.Fatalf("attempt %d came before its backoff", i+2)
		}
		clock.Advance(time.Second)
		settle(t, srv)
	}
	if n := len(rcv.deliveries()); n != 4 {
		t.Fatalf("%d attempts, want 4", n)
	}
	if got, _ := srv.hooks.get(h.Key); got.Status != StatusInactive {
		t.Fatalf("after 4 failures: %s", got.Status)
	}
	// /verify reactivates; then a success is a success.
	rcv.set(func(r *receiver) { r.status = 200 })
	var v Hook
	c.json("POST", "/crm/rest/v1/hooks/"+h.Key+"/verify", nil, 200, &v)
	if v.Status != StatusVerified {
		t.Fatalf("verify: %s", v.Status)
	}
	if _, err := srv.CreateContact(map[string]any{"email_addresses": []any{map[string]any{"email": "s@x.io", "field": "EMAIL1"}}}); err != nil {
		t.Fatal(err)
	}
	settle(t, srv)
	if n := len(rcv.deliveries()); n != 5 {
		t.Fatalf("%d deliveries after reactivation, want 5", n)
	}
}

func TestHookGoneDeactivatesAtOnce(t *testing.T) {
	t.Parallel()
	srv, _ := start(t, Options{})
	c := newClient(t, srv, false)
	rcv := newReceiver(t, true)
	h := subscribe(t, c, "contact.add", rcv.URL)
	rcv.set(func(r *receiver) { r.status = http.StatusGone })
	for i := 0; i < 2; i++ {
		if _, err := srv.CreateContact(map[string]any{"phone_numbers": []any{map[string]any{"number": "1", "field": "PHONE1"}}}); err != nil {
			t.Fatal(err)
		}
		settle(t, srv)
	}
	if n := len(rcv.deliveries()); n != 1 {
		t.Fatalf("%d deliveries, want 1 then silence", n)
	}
	if got, _ := srv.hooks.get(h.Key); got.Status != StatusInactive {
		t.Fatalf("after 410: %s", got.Status)
	}
}

func TestDeliveryFaults(t *testing.T) {
	t.Parallel()
	newEdit := func(srv *Server, n int) {
		for i := 0; i < n; i++ {
			if err := srv.EditContact(int64(i+1), map[string]any{"given_name": fmt.Sprint(i)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Run("drop", func(t *testing.T) {
		srv, clock := start(t, Options{Contacts: 3, HookDelay: time.Second}) // one batch
		rcv := newReceiver(t, true)
		subscribe(t, newClient(t, srv, false), "contact.edit", rcv.URL)
		srv.SetFaults(Faults{DropRate: 1})
		newEdit(srv, 2)
		clock.Advance(time.Second)
		settle(t, srv)
		if n := len(rcv.deliveries()); n != 0 {
			t.Fatalf("%d deliveries reached the receiver", n)
		}
		if d := srv.Deliveries(); len(d) != 1 || d[0].Outcome != "dropped" {
			t.Fatalf("records %+v", d)
		}
	})
	t.Run("duplicate", func(t *testing.T) {
		srv, clock := start(t, Options{Contacts: 3, HookDelay: time.Second}) // one batch
		rcv := newReceiver(t, true)
		subscribe(t, newClient(t, srv, false), "contact.edit", rcv.URL)
		srv.SetFaults(Faults{DuplicateRate: 1})
		newEdit(srv, 2)
		clock.Advance(time.Second)
		settle(t, srv)
		got := rcv.deliveries()
		if len(got) != 2 || fmt.Sprint(got[0]) != fmt.Sprint(got[1]) {
			t.Fatalf("want the same delivery twice, got %+v", got)
		}
	})
	t.Run("reorder", func(t *testing.T) {
		srv, clock := start(t, Options{Contacts: 3, HookDelay: time.Second}) // one batch
		rcv := newReceiver(t, true)
		subscribe(t, newClient(t, srv, false), "contact.edit", rcv.URL)
		srv.SetFaults(Faults{Reorder: true})
		newEdit(srv, 3)
		clock.Advance(time.Second)
		settle(t, srv)
		got := rcv.deliveries()
		if len(got) != 1 || len(got[0].ObjectKeys) != 3 || got[0].ObjectKeys[0].ID != 3 || got[0].ObjectKeys[2].ID != 1 {
			t.Fatalf("want newest first, got %+v", got)
		}
	})
}

func TestTagEventsWaitLonger(t *testing.T) {
	t.Parallel()
	srv, clock := start(t, Options{Contacts: 2, TagHookDelay: 5 * time.Minute})
	c := newClient(t, srv, false)
	rcv := newReceiver(t, true)
	subscribe(t, c, "contactGroup.applied", rcv.URL)
	subscribe(t, c, "contact.edit", rcv.URL)
	if err := srv.ApplyTag(1, 2); err != nil {
		t.Fatal(err)
	}
	if err := srv.EditContact(2, map[string]any{"given_name": "Q"}); err != nil {
		t.Fatal(err)
	}
	settle(t, srv)
	if got := rcv.deliveries(); len(got) != 1 || got[0].EventKey != "contact.edit" {
		t.Fatalf("before 5 min: %+v", got)
	}
	clock.Advance(5 * time.Minute)
	settle(t, srv)
	got := rcv.deliveries()
	if len(got) != 2 || got[1].EventKey != "contactGroup.applied" || got[1].ObjectKeys[0].ID != 1 {
		t.Fatalf("after 5 min: %+v", got)
	}
}

func TestHookTimeoutIsAFailure(t *testing.T) {
	t.Parallel()
	// The timeout also bounds the handshake, which the receiver answers at once: at 50 ms a
	// loaded machine sometimes failed it, and no delivery was ever attempted.
	srv, clock := start(t, Options{DeliveryTimeout: time.Second, RetryBackoff: ScaledBackoff(0.001)})
	c := newClient(t, srv, false)
	done := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s := r.Header.Get("X-Hook-Secret"); s != "" {
			w.Header().Set("X-Hook-Secret", s)
			return
		}
		_, _ = io.Copy(io.Discard, r.Body) // lets net/http notice the sandbox hanging up
		select {                           // never answers; the sandbox gives up
		case <-r.Context().Done():
		case <-done:
		}
	}))
	t.Cleanup(func() { close(done); slow.Close() })
	h := subscribe(t, c, "contact.add", slow.URL)
	if h.Status != StatusVerified {
		t.Fatalf("the handshake failed (%s): the test needs a verified hook", h.Status)
	}
	if _, err := srv.CreateContact(map[string]any{"phone_numbers": []any{map[string]any{"number": "1", "field": "PHONE1"}}}); err != nil {
		t.Fatal(err)
	}
	for _, wait := range append([]time.Duration{0}, ScaledBackoff(0.001)...) {
		clock.Advance(wait)
		settle(t, srv)
	}
	recs := srv.Deliveries()
	if len(recs) != 4 {
		t.Fatalf("%d attempts, want 4: %+v", len(recs), recs)
	}
	for _, r := range recs {
		if r.Outcome != "failed" || r.Error == "" {
			t.Fatalf("attempt %+v, want a failure with the timeout error", r)
		}
	}
	if got, _ := srv.hooks.get(h.Key); got.Status != StatusInactive {
		t.Fatalf("status %s", got.Status)
	}
}

func TestFlushAndDeliveryLogOverHTTP(t *testing.T) {
	t.Parallel()
	srv, _ := start(t, Options{HookDelay: time.Hour})
	c := newClient(t, srv, false)
	rcv := newReceiver(t, true)
	subscribe(t, c, "contact.add", rcv.URL)
	c.json("POST", "/_sandbox/contacts", map[string]any{"email_addresses": []any{map[string]any{"email": "f@x.io", "field": "EMAIL1"}}}, 201, nil)
	settle(t, srv)
	if n := len(rcv.deliveries()); n != 0 {
		t.Fatalf("%d deliveries before the hour", n)
	}
	c.json("POST", "/_sandbox/hooks/flush", nil, 204, nil)
	settle(t, srv)
	var recs []DeliveryRecord
	c.json("GET", "/_sandbox/deliveries", nil, 200, &recs)
	if len(rcv.deliveries()) != 1 || len(recs) != 1 || recs[0].Outcome != "delivered" || recs[0].Status != 200 {
		t.Fatalf("after flush: %d received, records %+v", len(rcv.deliveries()), recs)
	}
}
