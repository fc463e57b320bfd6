package ingest_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/keapsync/keapsync/sidecar/ingest"
	"github.com/keapsync/keapsync/sidecar/sandbox"
)

// profiles are the sandbox profiles the key ingest cases run under: what Keap documents, the
// answers hardest for us where it is silent, and orders listed the other way round.
var profiles = []struct {
	name string
	p    sandbox.Profile
}{
	{"documented", mustProfile("documented")},
	{"hardest", mustProfile("hardest")},
	{"orders-oldest-first", sandbox.Profile{OrdersOldestFirst: true, SinceExclusive: true, SecondStamps: true}},
}

func mustProfile(name string) sandbox.Profile {
	p, err := sandbox.ParseProfile(name)
	if err != nil {
		panic(err)
	}
	return p
}

// 2,500 orders listed newest first: a backfill stores every one with its items and payments and
// reports a total that matches; a payment taken in Keap then arrives through the hooks; a
// deleted order takes its items with it.
func TestOrdersEveryOneWithItemsAndPayments(t *testing.T) {
	t.Parallel()
	for _, pr := range profiles {
		t.Run(pr.name, func(t *testing.T) {
			t.Parallel() // each profile has its own world
			w := newWorldWith(t, sandbox.Options{Seed: 7, Contacts: 20, Profile: pr.p})
			ctx := context.Background()
			for i := range 2500 {
				id, err := w.sb.CreateOrder(map[string]any{"contact_id": 1 + i%20, "order_title": fmt.Sprint("Order ", i), "order_type": "Online",
					"order_items": []any{map[string]any{"product_id": 1, "quantity": 1 + i%3}, map[string]any{"product_id": 2, "quantity": 1}}})
				if err != nil {
					t.Fatal(err)
				}
				if i%250 == 0 {
					if err := w.sb.PayOrder(id, 1); err != nil {
						t.Fatal(err)
					}
				}
			}
			var progress bytes.Buffer
			w.sweeper.Progress = &progress
			if err := w.sweeper.Backfill(ctx, w.account, []string{"tag", "contact", "order"}); err != nil {
				t.Fatal(err)
			}
			state := w.sb.Snapshot()
			items, payments := 0, 0
			for _, o := range state.Orders {
				items += len(o["order_items"].([]map[string]any))
			}
			for _, o := range state.Orders {
				if o["total_paid"].(float64) > 0 {
					payments++ // one payment each here
				}
			}
			if got := w.count(t, `select count(*) from keap.orders`); got != len(state.Orders) || got < 2500 {
				t.Fatalf("orders: %d in Postgres, %d in the sandbox", got, len(state.Orders))
			}
			if got := w.count(t, `select count(*) from keap.order_items`); got != items {
				t.Errorf("order items: %d in Postgres, %d in the sandbox", got, items)
			}
			if got := w.count(t, `select count(*) from keap.order_payments`); got != payments {
				t.Errorf("order payments: %d in Postgres, %d in the sandbox", got, payments)
			}
			if n := w.count(t, `select count(*) from keap.orders o where total <> (select sum(price * quantity) from keap.order_items i where i.order_id = o.id)`); n != 0 {
				t.Errorf("%d orders whose items do not add up to their total", n)
			}
			want := fmt.Sprintf("backfill orders: %d/%d rows", len(state.Orders), len(state.Orders))
			if !strings.Contains(progress.String(), want) {
				t.Errorf("progress does not say %q:\n%s", want, progress.String())
			}

			// A payment taken in Keap arrives within one hook delivery.
			if _, err := ingest.EnsureHooks(ctx, w.db, w.api, w.account, w.hooks.URL); err != nil {
				t.Fatal(err)
			}
			oldest := int64(state.Orders[0]["id"].(int64))
			for _, o := range state.Orders {
				if id := o["id"].(int64); id < oldest {
					oldest = id
				}
			}
			var unpaid int64
			for _, o := range state.Orders {
				if o["total_paid"].(float64) == 0 && o["title"] == "Order 1" {
					unpaid = o["id"].(int64)
				}
			}
			if err := w.sb.PayOrder(unpaid, 7.5); err != nil {
				t.Fatal(err)
			}
			if err := w.sb.WaitHooksIdle(ctx); err != nil {
				t.Fatal(err)
			}
			w.drain(t)
			var paid float64
			if err := w.db.QueryRow(ctx, `select total_paid from keap.orders where keap_id = $1`, unpaid).Scan(&paid); err != nil || paid != 7.5 {
				t.Fatalf("total_paid after a payment in Keap: %v %v", paid, err)
			}
			if got := w.count(t, `select count(*) from keap.order_payments p join keap.orders o on o.id = p.order_id
			    where o.keap_id = $1 and p.amount = 7.5`, unpaid); got != 1 {
				t.Fatalf("payment rows of order %d: %d", unpaid, got)
			}

			// Deleting an order in Keap removes its items here.
			var doomed int64
			for _, o := range state.Orders {
				if o["total_paid"].(float64) == 0 && o["id"].(int64) != unpaid {
					doomed = o["id"].(int64)
					break
				}
			}
			if err := w.sb.DeleteOrder(doomed); err != nil {
				t.Fatal(err)
			}
			if err := w.sb.WaitHooksIdle(ctx); err != nil {
				t.Fatal(err)
			}
			w.drain(t)
			if got := w.count(t, `select count(*) from keap.order_items i join keap.orders o on o.id = i.order_id where o.keap_id = $1`, doomed); got != 0 {
				t.Fatalf("deleted order %d still has %d items", doomed, got)
			}
			if got := w.count(t, `select count(*) from keap.orders where keap_id = $1`, doomed); got != 0 {
				t.Fatal("deleted order still here")
			}
		})
	}
}

// A tag applied in Keap arrives, whether or not Keap bumps the contact's last_updated.
func TestTagWithoutStampBumpArrives(t *testing.T) {
	t.Parallel()
	for _, pr := range profiles {
		t.Run(pr.name, func(t *testing.T) {
			w := newWorldWith(t, sandbox.Options{Seed: 7, Contacts: 20, Profile: pr.p})
			ctx := context.Background()
			if err := w.sweeper.Backfill(ctx, w.account, ingest.ObjectTypes); err != nil {
				t.Fatal(err)
			}
			if _, err := ingest.EnsureHooks(ctx, w.db, w.api, w.account, w.hooks.URL); err != nil {
				t.Fatal(err)
			}
			state := w.sb.Snapshot()
			contact := state.Contacts[0]
			cid := idOf(t, contact)
			have := map[int64]bool{}
			for _, x := range contact["tag_ids"].([]int64) {
				have[x] = true
			}
			var tagID int64
			for _, tg := range state.Tags {
				if id := idOf(t, tg); !have[id] {
					tagID = id
					break
				}
			}
			before := w.sb.Snapshot().Contacts[0]["last_updated"]
			if err := w.sb.ApplyTag(cid, tagID); err != nil {
				t.Fatal(err)
			}
			if after := w.sb.Snapshot().Contacts[0]["last_updated"]; (after == before) != pr.p.TagsKeepStamp {
				t.Fatalf("the sandbox did not follow TagsKeepStamp=%v", pr.p.TagsKeepStamp)
			}
			if err := w.sb.WaitHooksIdle(ctx); err != nil {
				t.Fatal(err)
			}
			w.drain(t)
			if got := w.count(t, `select count(*) from keap.contact_tags ct join keap.contacts c on c.id = ct.contact_id
			    join keap.tags tg on tg.id = ct.tag_id where c.keap_id = $1 and tg.keap_id = $2`, cid, tagID); got != 1 {
				t.Fatalf("tag %d applied in Keap did not reach contact %d", tagID, cid)
			}
		})
	}
}

// 1,500 contacts changed within one second (a bulk edit: one shared stamp), under inclusive and
// exclusive since: a backfill and a reconcile miss none of them.
func TestPagingSurvivesTies(t *testing.T) {
	t.Parallel()
	for _, exclusive := range []bool{false, true} {
		t.Run(fmt.Sprintf("exclusive=%v", exclusive), func(t *testing.T) {
			t.Parallel() // each has its own world
			w := newWorldWith(t, sandbox.Options{Seed: 7, Contacts: 1500,
				Profile: sandbox.Profile{SinceExclusive: exclusive, SecondStamps: true}})
			ctx := context.Background()
			if err := w.sb.BulkEditContacts(nil, map[string]any{"job_title": "First"}); err != nil {
				t.Fatal(err)
			}
			if err := w.sweeper.Backfill(ctx, w.account, []string{"contact"}); err != nil {
				t.Fatal(err)
			}
			if got := w.count(t, `select count(*) from keap.contacts where job_title = 'First'`); got != 1500 {
				t.Fatalf("backfill stored %d of 1500 contacts sharing one stamp", got)
			}
			if err := w.sb.BulkEditContacts(nil, map[string]any{"job_title": "Second"}); err != nil {
				t.Fatal(err)
			}
			if err := w.sweeper.Reconcile(ctx, w.account, []string{"contact"}); err != nil {
				t.Fatal(err)
			}
			if got := w.count(t, `select count(*) from keap.contacts where job_title = 'Second'`); got != 1500 {
				t.Fatalf("reconcile applied %d of 1500 contacts sharing one stamp", got)
			}
		})
	}
}

// cancelOnWrite cancels a context the first time progress is printed: after the first page.
type cancelOnWrite struct {
	cancel context.CancelFunc
	buf    bytes.Buffer
}

func (c *cancelOnWrite) Write(p []byte) (int, error) {
	c.cancel()
	return c.buf.Write(p)
}

// An interrupted backfill of newest-first orders leaves no checkpoint past what it applied, and
// the next run stores every order with a progress total that matches.
func TestInterruptedOrderBackfillLosesNothing(t *testing.T) {
	t.Parallel()
	for _, pr := range profiles {
		t.Run(pr.name, func(t *testing.T) {
			w := newWorldWith(t, sandbox.Options{Seed: 7, Contacts: 10, Profile: pr.p})
			for i := range 600 {
				if _, err := w.sb.CreateOrder(map[string]any{"contact_id": 1 + i%10, "order_title": "x", "order_type": "Online",
					"order_items": []any{map[string]any{"product_id": 1, "quantity": 1}}}); err != nil {
					t.Fatal(err)
				}
			}
			ctx, cancel := context.WithCancel(context.Background())
			w.sweeper.Progress = &cancelOnWrite{cancel: cancel}
			w.sweeper.Appliers = 1
			if err := w.sweeper.Backfill(ctx, w.account, []string{"order"}); err == nil {
				t.Fatal("the interrupted backfill did not stop")
			}
			stored := w.count(t, `select count(*) from keap.orders`)
			if stored == 0 || stored >= 600 {
				t.Fatalf("the interruption came at %d orders", stored)
			}
			if n := w.count(t, `select count(*) from keapsync.sync_cursors where object_type = 'order' and high_water is not null`); n != 0 {
				t.Fatal("an interrupted backfill of a newest-first listing recorded a checkpoint")
			}
			var progress bytes.Buffer
			w.sweeper.Progress = &progress
			if err := w.sweeper.Backfill(context.Background(), w.account, []string{"order"}); err != nil {
				t.Fatal(err)
			}
			total := len(w.sb.Snapshot().Orders)
			if got := w.count(t, `select count(*) from keap.orders`); got != total {
				t.Fatalf("after resuming: %d of %d orders", got, total)
			}
			if want := fmt.Sprintf("backfill orders: %d/%d rows", total, total); !strings.Contains(progress.String(), want) {
				t.Fatalf("progress does not say %q:\n%s", want, progress.String())
			}
		})
	}
}

// A payment that leaves the order's stamp alone and whose hook never comes is still found by the
// next reconcile, which fetches the payments of that order alone.
func TestReconcileFindsPaymentsWithoutHooks(t *testing.T) {
	t.Parallel()
	for _, pr := range profiles {
		t.Run(pr.name, func(t *testing.T) {
			w := newWorldWith(t, sandbox.Options{Seed: 7, Contacts: 30, Profile: pr.p})
			ctx := context.Background()
			if err := w.sweeper.Backfill(ctx, w.account, []string{"tag", "contact", "order"}); err != nil {
				t.Fatal(err)
			}
			// The oldest unpaid order: its stamp lies well before the reconcile's overlap.
			var unpaid int64
			oldest := "9999"
			for _, o := range w.sb.Snapshot().Orders {
				if m := o["modification_date"].(string); o["total_paid"].(float64) == 0 && m < oldest {
					unpaid, oldest = o["id"].(int64), m
				}
			}
			if err := w.sb.PayOrder(unpaid, 2.25); err != nil {
				t.Fatal(err)
			}
			w.sb.ClearRequests()
			if err := w.sweeper.Reconcile(ctx, w.account, []string{"order"}); err != nil {
				t.Fatal(err)
			}
			if got := w.count(t, `select count(*) from keap.orders o join keap.order_payments p on p.order_id = o.id
			    where o.keap_id = $1 and o.total_paid = 2.25 and p.amount = 2.25`, unpaid); got != 1 {
				t.Fatalf("the payment on order %d did not arrive by reconcile", unpaid)
			}
			fetched := 0
			for _, r := range w.sb.Requests() {
				if strings.HasSuffix(r.Path, "/payments") {
					fetched++
				}
			}
			if fetched != 1 {
				t.Fatalf("the reconcile fetched payments %d times, want once (for the order that changed)", fetched)
			}
		})
	}
}
