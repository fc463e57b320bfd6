package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keapsync/keapsync/sidecar/sandbox"
)

// Both actors draw every choice from their own seeded source and run as one goroutine each, so
// a seed replays the same sequence of intended operations. Values are unique per write
// ("K17-job", "L230-job"), so the checker can tell exactly whose write a final value is.

// universe is what both actors know at the start: the contacts they fight over, the tags, the
// text custom field, the products and the orders.
type universe struct {
	hot      []int64 // Keap ids both actors edit
	all      []int64 // every Keap id present after backfill
	tags     []int64
	cf       int64 // the "Favourite colour" text custom field
	products []int64
	orders   []int64 // every order present after backfill
	// Orders present after backfill, split so that an order someone may delete is never paid:
	// Keap refuses to delete an order with payments, and a refused local delete is a dead
	// letter by design, not a convergence failure.
	payable   []int64 // the Keap actor pays these (and its own)
	deletable []int64 // either actor deletes these (unpaid)
}

type keapActor struct {
	sb        *sandbox.Server
	u         universe
	rnd       *rand.Rand
	led       *ledger
	own       []int64 // contacts it created
	ownOrders []int64 // orders it created
	seq       int
}

// pickFrom picks an element of one of a few lists, each element with the same chance, and says
// which list it came from; which is -1 when all are empty.
func pickFrom(rnd *rand.Rand, lists ...[]int64) (v int64, which int) {
	n := 0
	for _, l := range lists {
		n += len(l)
	}
	if n == 0 {
		return 0, -1
	}
	i := rnd.IntN(n)
	for which, l := range lists {
		if i < len(l) {
			return l[i], which
		}
		i -= len(l)
	}
	return 0, -1
}

func (a *keapActor) pick() int64 {
	if len(a.own) > 0 && a.rnd.IntN(4) == 0 {
		return a.own[a.rnd.IntN(len(a.own))]
	}
	if a.rnd.IntN(3) == 0 {
		return a.u.all[a.rnd.IntN(len(a.u.all))]
	}
	return a.u.hot[a.rnd.IntN(len(a.u.hot))]
}

// step makes one change the way a person in Keap's web app would.
func (a *keapActor) step() {
	a.seq++
	id := a.pick()
	ref := "k" + strconv.FormatInt(id, 10)
	v := fmt.Sprintf("K%d", a.seq)
	edit := func(op string, body map[string]any, field, value string) {
		if err := a.sb.EditContact(id, body); err == nil {
			a.led.record(sideKeap, ref, false, map[string]string{field: value})
			a.led.count(sideKeap, op)
		}
	}
	switch r := a.rnd.IntN(100); {
	case r < 11:
		edit("edit", map[string]any{"given_name": v + "-given"}, "given_name", v+"-given")
	case r < 20:
		edit("edit", map[string]any{"family_name": v + "-family"}, "family_name", v+"-family")
	case r < 29:
		edit("edit", map[string]any{"job_title": v + "-job"}, "job_title", v+"-job")
	case r < 37:
		e := "k" + strconv.Itoa(a.seq) + "@chaos.test"
		edit("edit", map[string]any{"email_addresses": []any{map[string]any{"field": "EMAIL1", "email": e}}}, "email", e)
	case r < 44:
		edit("edit", map[string]any{"phone_numbers": []any{map[string]any{"field": "PHONE1", "number": v}}}, "phone", v)
	case r < 53:
		edit("edit", map[string]any{"custom_fields": []any{map[string]any{"id": a.u.cf, "content": v + "-cf"}}},
			"custom_fields."+strconv.FormatInt(a.u.cf, 10), v+"-cf")
	case r < 64:
		tag := a.u.tags[a.rnd.IntN(len(a.u.tags))]
		if a.sb.ApplyTag(id, tag) == nil {
			a.led.record(sideKeap, ref, false, map[string]string{"tag." + strconv.FormatInt(tag, 10): "true"})
			a.led.count(sideKeap, "tag")
		}
	case r < 75:
		tag := a.u.tags[a.rnd.IntN(len(a.u.tags))]
		if a.sb.RemoveTag(id, tag) == nil {
			a.led.record(sideKeap, ref, false, map[string]string{"tag." + strconv.FormatInt(tag, 10): ""})
			a.led.count(sideKeap, "untag")
		}
	case r < 86:
		e := "kc" + strconv.Itoa(a.seq) + "@chaos.test"
		nid, err := a.sb.CreateContact(map[string]any{"given_name": v + "-given", "family_name": v + "-family",
			"email_addresses": []any{map[string]any{"field": "EMAIL1", "email": e}},
			"phone_numbers":   []any{map[string]any{"field": "PHONE1", "number": v}}})
		if err == nil {
			a.own = append(a.own, nid)
			a.led.record(sideKeap, "k"+strconv.FormatInt(nid, 10), false, map[string]string{
				"given_name": v + "-given", "family_name": v + "-family", "email": e, "phone": v})
			a.led.count(sideKeap, "create")
		}
	case r < 91:
		if a.sb.DeleteContact(id) == nil {
			a.led.delete(sideKeap, ref)
			a.led.count(sideKeap, "delete")
		}
	case r < 95:
		// An order for any contact it knows (Keap refuses one whose contact is gone).
		title := v + "-order"
		qty := 1 + a.rnd.IntN(3)
		oid, err := a.sb.CreateOrder(map[string]any{"contact_id": id, "order_title": title, "order_type": "Online",
			"order_items": []any{map[string]any{"product_id": a.u.products[a.rnd.IntN(len(a.u.products))], "quantity": qty}}})
		if err == nil {
			a.ownOrders = append(a.ownOrders, oid)
			a.led.order(orderOp{Side: sideKeap, Op: "create", Ref: "k" + strconv.FormatInt(oid, 10), Title: title, Contact: id})
			a.led.count(sideKeap, "order-create")
		}
	case r < 98:
		if oid, which := pickFrom(a.rnd, a.u.payable, a.ownOrders); which >= 0 && a.sb.PayOrder(oid, float64(1+a.rnd.IntN(40))) == nil {
			a.led.count(sideKeap, "order-pay")
		}
	default:
		// Its own orders may be paid by now; Keap refuses those, and a refusal changes nothing.
		if oid, which := pickFrom(a.rnd, a.u.deletable, a.ownOrders); which >= 0 && a.sb.DeleteOrder(oid) == nil {
			a.led.order(orderOp{Side: sideKeap, Op: "delete", Ref: "k" + strconv.FormatInt(oid, 10)})
			a.led.count(sideKeap, "order-delete")
		}
	}
}

type localActor struct {
	pool      *pgxpool.Pool
	account   string
	u         universe
	rnd       *rand.Rand
	led       *ledger
	own       []int64 // local ids of contacts it inserted
	ownOrders []int64 // local ids of orders it inserted
	seq       int
}

// target picks a contact: by Keap id for the shared ones, by local id for its own inserts.
func (a *localActor) target() (ref, cond string, arg int64) {
	if len(a.own) > 0 && a.rnd.IntN(4) == 0 {
		id := a.own[a.rnd.IntN(len(a.own))]
		return "l" + strconv.FormatInt(id, 10), "c.id = $1", id
	}
	id := a.u.hot[a.rnd.IntN(len(a.u.hot))]
	return "k" + strconv.FormatInt(id, 10), "c.keap_id = $1", id
}

// step makes one change the way an analyst or an app would: plain SQL on keap.*.
func (a *localActor) step(ctx context.Context) {
	a.seq++
	ref, cond, arg := a.target()
	v := fmt.Sprintf("L%d", a.seq)
	// exec runs one statement; one affected row is a write, an error may or may not have
	// committed (the Postgres restart), so it is recorded as uncertain.
	// Statements are not cut off when the soak ends (that would leave their outcome unknown);
	// the timeout only bounds one stuck on a Postgres that went away.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	exec := func(op, sql string, fields map[string]string, args ...any) bool {
		tag, err := a.pool.Exec(sctx, sql, append([]any{arg, a.account}, args...)...)
		switch {
		case err != nil:
			a.led.record(sideLocal, ref, true, fields)
			if op == "delete" {
				a.led.delete(sideLocal+"?", ref) // may have happened: either outcome is accepted
			}
			return false
		case err == nil && tag.RowsAffected() == 1:
			a.led.record(sideLocal, ref, false, fields)
			a.led.count(sideLocal, op)
			return true
		}
		return false
	}
	set := func(col, value string) {
		exec("edit", "update keap.contacts c set "+col+" = $3 where c.account_id = $2 and "+cond,
			map[string]string{col: value}, value)
	}
	switch r := a.rnd.IntN(100); {
	case r < 11:
		set("given_name", v+"-given")
	case r < 20:
		set("family_name", v+"-family")
	case r < 29:
		set("job_title", v+"-job")
	case r < 37:
		set("email", "l"+strconv.Itoa(a.seq)+"@chaos.test")
	case r < 44:
		set("phone", v)
	case r < 53:
		cf := strconv.FormatInt(a.u.cf, 10)
		exec("edit", "update keap.contacts c set custom_fields = custom_fields || jsonb_build_object($3::text, $4::text) where c.account_id = $2 and "+cond,
			map[string]string{"custom_fields." + cf: v + "-cf"}, cf, v+"-cf")
	case r < 64:
		tag := a.u.tags[a.rnd.IntN(len(a.u.tags))]
		exec("tag", `insert into keap.contact_tags (account_id, contact_id, tag_id)
			select c.account_id, c.id, t.id from keap.contacts c join keap.tags t on t.account_id = c.account_id and t.keap_id = $3
			 where c.account_id = $2 and `+cond+` on conflict do nothing`,
			map[string]string{"tag." + strconv.FormatInt(tag, 10): "true"}, tag)
	case r < 75:
		tag := a.u.tags[a.rnd.IntN(len(a.u.tags))]
		exec("untag", `delete from keap.contact_tags ct using keap.contacts c, keap.tags t
			 where ct.contact_id = c.id and ct.tag_id = t.id and t.keap_id = $3 and c.account_id = $2 and `+cond,
			map[string]string{"tag." + strconv.FormatInt(tag, 10): ""}, tag)
	case r < 86:
		e := "lc" + strconv.Itoa(a.seq) + "@chaos.test"
		var id int64
		err := a.pool.QueryRow(sctx, `insert into keap.contacts (account_id, given_name, family_name, email, phone)
			values ($1, $2, $3, $4, $5) returning id`, a.account, v+"-given", v+"-family", e, v).Scan(&id)
		if err == nil {
			a.own = append(a.own, id)
			a.led.record(sideLocal, "l"+strconv.FormatInt(id, 10), false, map[string]string{
				"given_name": v + "-given", "family_name": v + "-family", "email": e, "phone": v})
			a.led.count(sideLocal, "create")
		}
	case r < 91:
		if exec("delete", "delete from keap.contacts c where c.account_id = $2 and "+cond, nil) {
			a.led.delete(sideLocal, ref)
		}
	case r < 96:
		a.createOrder(sctx, v)
	default:
		a.deleteOrder(sctx)
	}
}

// sqlInsertOrder inserts an order with one item in one statement, as an app would: Keap's v1
// can create an order (with its items) but not change one, so these are the order writes that
// have somewhere to go. Like an app, it orders only for a contact it still has.
const sqlInsertOrder = `
with o as (
  insert into keap.orders (account_id, contact_keap_id, title, order_type, order_date)
  select $1, $2, $3, 'Offline', now()
   where exists (select 1 from keap.contacts c where c.account_id = $1 and c.keap_id = $2)
  returning id, account_id)
insert into keap.order_items (account_id, order_id, product_id, quantity, price)
select o.account_id, o.id, $4, $5, $6 from o returning order_id`

// createOrder inserts an order for one of the hot contacts (by Keap id: an order of a contact
// not yet in Keap could not be sent).
func (a *localActor) createOrder(ctx context.Context, v string) {
	contact := a.u.hot[a.rnd.IntN(len(a.u.hot))]
	title := v + "-order"
	product := a.u.products[a.rnd.IntN(len(a.u.products))]
	qty, price := 1+a.rnd.IntN(3), fmt.Sprintf("%d.%02d", 1+a.rnd.IntN(90), a.rnd.IntN(100))
	var id int64
	err := a.pool.QueryRow(ctx, sqlInsertOrder, a.account, contact, title, product, qty, price).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return // the contact is gone here
	}
	ref := "l" + strconv.FormatInt(id, 10)
	if err != nil {
		// It may have committed (Postgres went away): the order may exist or not, unnamed.
		ref = "l?"
	} else {
		a.ownOrders = append(a.ownOrders, id)
		a.led.count(sideLocal, "order-create")
	}
	a.led.order(orderOp{Side: sideLocal, Op: "create", Ref: ref, Title: title, Contact: contact, Uncertain: err != nil})
}

const (
	sqlDeleteOrderByKeapID = `delete from keap.orders where account_id = $1 and keap_id = $2`
	sqlDeleteOrderByID     = `delete from keap.orders where account_id = $1 and id = $2`
)

// deleteOrder deletes one of the shared deletable orders, or one it inserted.
func (a *localActor) deleteOrder(ctx context.Context) {
	id, which := pickFrom(a.rnd, a.u.deletable, a.ownOrders)
	sql, ref := sqlDeleteOrderByKeapID, "k"
	switch which {
	case -1:
		return
	case 1:
		sql, ref = sqlDeleteOrderByID, "l"
	}
	ref += strconv.FormatInt(id, 10)
	tag, err := a.pool.Exec(ctx, sql, a.account, id)
	switch {
	case err != nil:
		a.led.order(orderOp{Side: sideLocal, Op: "delete", Ref: ref, Uncertain: true})
	case tag.RowsAffected() == 1:
		a.led.order(orderOp{Side: sideLocal, Op: "delete", Ref: ref})
		a.led.count(sideLocal, "order-delete")
	}
}

// runActors drives both actors at rate operations per second each until ctx ends.
func runActors(ctx context.Context, ka *keapActor, la *localActor, rate float64) {
	tick := time.Duration(float64(time.Second) / rate)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			la.step(ctx)
			sleepCtx(ctx, tick)
		}
	}()
	for ctx.Err() == nil {
		ka.step()
		sleepCtx(ctx, tick)
	}
	<-done
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
