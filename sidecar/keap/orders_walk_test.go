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
	for _, oldestFirst := range []bool{false, true} {
		t.Run(fmt.Sprintf("oldestFirst=%v", oldestFirst), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envOptions{sandbox: sandbox.Options{Contacts: 10, Seed: 9, Profile: sandbox.Profile{OrdersOldestFirst: oldestFirst}}})
			c, ctx := e.client, context.Background()
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
