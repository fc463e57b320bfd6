package keap

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/keapsync/keapsync/sidecar/sandbox"
)

// OrdersSince sees every order whichever way Keap lists them, stops early only when the listing
// has shown it runs newest first, and misses nothing when orders are deleted mid-walk.
func TestOrdersSinceWhateverTheOrder(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		oldestFirst bool
		prefetch    int
	}{{false, 1}, {true, 1}, {false, 4}, {true, 4}} {
		oldestFirst := tc.oldestFirst
		t.Run(fmt.Sprintf("oldestFirst=%v/prefetch=%d", oldestFirst, tc.prefetch), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envOptions{sandbox: sandbox.Options{Contacts: 10, Seed: 9, Profile: sandbox.Profile{OrdersOldestFirst: oldestFirst}}})
			c, ctx := e.client, WithPrefetch(context.Background(), tc.prefetch)
			var ids []int64
			for i := range 60 {
				id, err := e.srv.CreateOrder(map[string]any{"contact_id": 1 + i%10, "order_title": "x", "order_type": "Offline",
					"order_items": []any{map[string]any{"product_id": 1, "quantity": 1}}})
				if err != nil {
					t.Fatal(err)
				}
				ids = append(ids, id)
			}
			all, err := Collect(c.Orders(ctx, OrderQuery{Limit: 1000}))
			if err != nil {
				t.Fatal(err)
			}
			// Deleting orders the walk has passed shifts the rest up; nothing may be skipped.
			seen := map[ID]bool{}
			deleted := map[ID]bool{}
			n := 0
			for o, err := range c.OrdersSince(ctx, time.Time{}, OrderQuery{Limit: 10}) {
				if err != nil {
					t.Fatal(err)
				}
				if seen[o.ID] {
					t.Fatalf("order %d yielded twice", o.ID)
				}
				seen[o.ID] = true
				if n++; n == 10 {
					for _, id := range []int64{ids[5], ids[20], ids[40]} {
						if !seen[ID(id)] {
							continue
						}
						if err := e.srv.DeleteOrder(id); err != nil {
							t.Fatal(err)
						}
						deleted[ID(id)] = true
					}
					if len(deleted) == 0 { // oldest first: the first page holds the generated orders
						for id := range seen {
							if err := e.srv.DeleteOrder(int64(id)); err == nil {
								deleted[id] = true
							}
							if len(deleted) == 3 {
								break
							}
						}
					}
				}
			}
			for _, o := range all {
				if !seen[o.ID] && !deleted[o.ID] {
					t.Fatalf("order %d was skipped (%d seen of %d)", o.ID, len(seen), len(all))
				}
			}

			// Since the newest order: newest first stops at once, oldest first walks to the end.
			var newest time.Time
			for _, o := range all {
				if !deleted[o.ID] && o.ModificationDate.After(newest) {
					newest = o.ModificationDate.Time
				}
			}
			e.srv.ClearRequests()
			got, err := Collect(c.OrdersSince(ctx, newest, OrderQuery{Limit: 10}))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 {
				t.Fatalf("since the newest stamp: %d orders", len(got))
			}
			if calls := len(e.srv.Requests()); (calls == 1) == oldestFirst {
				t.Fatalf("oldestFirst=%v: %d calls", oldestFirst, calls)
			}
		})
	}
}

// With prefetch, a walk over every order asks for the next pages while it reads one: Keap sees
// list calls in flight together, and the walk still yields every order once.
func TestOrdersWalkPrefetchesPages(t *testing.T) {
	t.Parallel()
	srv, err := sandbox.New(sandbox.Options{Contacts: 10, Seed: 9, Unthrottled: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	client, err := New(Config{APIURL: srv.URL() + "/crm/rest", Credentials: BearerToken(srv.IssueTokens().AccessToken), Limits: OAuthLimits})
	if err != nil {
		t.Fatal(err)
	}
	e := struct {
		srv    *sandbox.Server
		client *Client
	}{srv, client}
	for i := range 60 {
		if _, err := e.srv.CreateOrder(map[string]any{"contact_id": 1 + i%10, "order_title": "x", "order_type": "Offline",
			"order_items": []any{map[string]any{"product_id": 1, "quantity": 1}}}); err != nil {
			t.Fatal(err)
		}
	}
	want, err := Collect(e.client.Orders(context.Background(), OrderQuery{Limit: 1000}))
	if err != nil {
		t.Fatal(err)
	}
	e.srv.SetFaults(sandbox.Faults{Latency: 150 * time.Millisecond}) // longer than the budget spaces calls
	e.srv.ClearRequests()
	got, err := Collect(e.client.OrdersSince(WithPrefetch(context.Background(), 4), time.Time{}, OrderQuery{Limit: 10}))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[ID]bool{}
	for _, o := range got {
		if seen[o.ID] {
			t.Fatalf("order %d yielded twice", o.ID)
		}
		seen[o.ID] = true
	}
	if len(seen) != len(want) {
		t.Fatalf("%d of %d orders", len(seen), len(want))
	}
	reqs := e.srv.Requests()
	overlapping := false
	for i := range reqs {
		for j := range reqs {
			if i != j && reqs[j].At.After(reqs[i].At) && reqs[j].At.Before(reqs[i].At.Add(reqs[i].Duration)) {
				overlapping = true
			}
		}
	}
	if !overlapping {
		for _, r := range reqs {
			t.Log(r.At, r.Duration, r.Query)
		}
		t.Fatalf("no two of %d list calls were in flight together", len(reqs))
	}
}
