package push_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/keapsync/keapsync/sidecar/devtools/pgtest"
	"github.com/keapsync/keapsync/sidecar/keap"
	"github.com/keapsync/keapsync/sidecar/migrate"
	"github.com/keapsync/keapsync/sidecar/push"
	"github.com/keapsync/keapsync/sidecar/sandbox"
)

// The consumer is stopped mid-stream and its connection killed server-side; nothing is lost
// and nothing is pushed twice.
func TestConsumerResumesWithoutLoss(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 300)
	p := w.pusher(w.config(nil))
	stop := w.start(p.Consume)
	w.enqueued()
	n := int(w.int(`select count(*) from keap.contacts`))
	for i := range n {
		id, _ := w.synced(i)
		w.exec(`update keap.contacts set job_title = $2 where id = $1`, id, "Resume "+strconv.Itoa(i))
		switch i {
		case n / 3:
			stop()
		case n / 2:
			w.start(p.Consume)
		case 2 * n / 3:
			w.exec(`select pg_terminate_backend(active_pid) from pg_replication_slots where slot_name = $1 and active`, w.slot)
		}
	}
	w.enqueued()
	if got := w.int(`select count(*) from keapsync.push_queue`); got != int64(n) {
		t.Fatalf("%d of %d edited records queued", got, n)
	}
	w.sb.ClearRequests()
	w.start(p.Work)
	w.quiet()
	if got := len(w.writes()); got != n {
		t.Errorf("%d calls for %d edited records", got, n)
	}
	_, kid := w.synced(n - 1)
	if c := w.contact(kid); c.JobTitle != "Resume "+strconv.Itoa(n-1) {
		t.Errorf("last edit in Keap: %q", c.JobTitle)
	}
}

// Two pushers, one slot: one streams, the other stands by and takes over when it dies.
func TestHandover(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 20)
	regA, regB := prometheus.NewRegistry(), prometheus.NewRegistry()
	cfgA, cfgB := w.config(nil), w.config(nil)
	cfgA.Registerer, cfgB.Registerer = regA, regB
	stopA := w.start(w.pusher(cfgA).Run)
	w.eventually("A to stream", func() bool { return gauge(t, regA, "keapsync_push_slot_active") == 1 })
	w.start(w.pusher(cfgB).Run)
	edit := func(from, to int, value string) {
		for i := from; i < to; i++ {
			id, _ := w.synced(i)
			w.exec(`update keap.contacts set job_title = $2 where id = $1`, id, value)
		}
	}
	w.sb.ClearRequests()
	edit(0, 10, "Before")
	w.quiet()
	if gauge(t, regA, "keapsync_push_slot_active") != 1 || gauge(t, regB, "keapsync_push_slot_active") != 0 {
		t.Fatal("A should stream and B stand by")
	}
	stopA()
	edit(5, 15, "After")
	w.quiet()
	w.eventually("B to stream", func() bool { return gauge(t, regB, "keapsync_push_slot_active") == 1 })
	if got := len(w.writes()); got != 20 {
		t.Errorf("%d calls for 20 edits: %v", got, w.writes())
	}
	for i, want := range map[int]string{0: "Before", 9: "After", 14: "After"} {
		_, kid := w.synced(i)
		if c := w.contact(kid); c.JobTitle != want {
			t.Errorf("contact %d: %q, want %q", kid, c.JobTitle, want)
		}
	}
}

func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) > 0 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return -1
}

// lossy loses Keap's answer to the first creates, as a crash between Keap's answer and
// mark_pushed would: Keap made the contact, we never heard.
type lossy struct {
	push.Keap
	lose atomic.Int32
}

var errLost = errors.New("connection reset by peer (answer lost)")

func (l *lossy) CreateContact(ctx context.Context, body any) (*keap.Contact, error) {
	c, err := l.Keap.CreateContact(ctx, body)
	if err == nil && l.lose.Add(-1) >= 0 {
		return nil, errLost
	}
	return c, err
}

func (l *lossy) UpsertContact(ctx context.Context, dup string, body any) (*keap.Contact, error) {
	c, err := l.Keap.UpsertContact(ctx, dup, body)
	if err == nil && l.lose.Add(-1) >= 0 {
		return nil, errLost
	}
	return c, err
}

func (l *lossy) CreateTag(ctx context.Context, in keap.TagInput) (*keap.Tag, error) {
	tag, err := l.Keap.CreateTag(ctx, in)
	if err == nil && l.lose.Add(-1) >= 0 {
		return nil, errLost
	}
	return tag, err
}

func (l *lossy) CreateOrder(ctx context.Context, in keap.OrderInput) (*keap.Order, error) {
	o, err := l.Keap.CreateOrder(ctx, in)
	if err == nil && l.lose.Add(-1) >= 0 {
		return nil, errLost
	}
	return o, err
}

func TestCreateIsNotDoubled(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 5)
	api := &lossy{Keap: w.api}
	api.lose.Store(2)
	w.start(w.pusher(w.config(func(context.Context, string) (push.Keap, error) { return api, nil })).Run)
	w.quiet()
	w.exec(`insert into keap.contacts (account_id, given_name, family_name, phone) values ($1, 'Lost', 'Answer', '555-0199')`, w.account)
	w.exec(`insert into keap.contacts (account_id, given_name, family_name, email) values ($1, 'Lost', 'Mail', 'lost@example.com')`, w.account)
	w.quiet()
	page, err := w.api.ListContacts(context.Background(), keap.ContactQuery{GivenName: "Lost", Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 2 {
		t.Errorf("%d contacts named Lost in Keap, want 2", len(page.Items))
	}
	if n := w.int(`select count(*) from keap.contacts where given_name = 'Lost' and keap_id is not null`); n != 2 {
		t.Errorf("%d of 2 Keap ids written back", n)
	}
	if api.lose.Load() >= 0 {
		t.Error("no answer was lost: the test proves nothing")
	}
}

// answerLost loses Keap's answer to the first update or create that succeeds, as a crash
// between Keap's answer and mark_pushed would; meanwhile runs while the answer is "on its way".
type answerLost struct {
	push.Keap
	once      sync.Once
	meanwhile func()
}

func (a *answerLost) lose(err error) bool {
	lost := false
	a.once.Do(func() {
		if err == nil {
			a.meanwhile()
			lost = true
		}
	})
	return lost
}

func (a *answerLost) UpdateContact(ctx context.Context, id keap.ID, body any, mask ...string) (*keap.Contact, error) {
	c, err := a.Keap.UpdateContact(ctx, id, body, mask...)
	if a.lose(err) {
		return nil, errLost
	}
	return c, err
}

func (a *answerLost) CreateContact(ctx context.Context, body any) (*keap.Contact, error) {
	c, err := a.Keap.CreateContact(ctx, body)
	if a.lose(err) {
		return nil, errLost
	}
	return c, err
}

func (a *answerLost) UpsertContact(ctx context.Context, dup string, body any) (*keap.Contact, error) {
	c, err := a.Keap.UpsertContact(ctx, dup, body)
	if a.lose(err) {
		return nil, errLost
	}
	return c, err
}

func (a *answerLost) CreateOrder(ctx context.Context, in keap.OrderInput) (*keap.Order, error) {
	o, err := a.Keap.CreateOrder(ctx, in)
	if a.lose(err) {
		return nil, errLost
	}
	return o, err
}

// A record deleted here after Keap took its create but before the answer was recorded: nothing
// here names what the create made any more, and it must not outlive the delete in Keap, unless
// the account keeps local deletes from Keap (then it stays there, like any record deleted here).
func TestDeletedBeforeCreateAnswer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	contactsNamed := func(w *world, q keap.ContactQuery) int {
		page, err := w.api.ListContacts(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		return len(page.Items)
	}
	for _, tc := range []struct {
		name, table, insert string
		propagate           bool
		inKeap              func(w *world) int // how many of what the create made Keap holds
	}{
		{"contact", "contacts", `insert into keap.contacts (account_id, given_name, email) values ($1, 'Gone', 'gone@example.com') returning id`, true,
			func(w *world) int { return contactsNamed(w, keap.ContactQuery{Email: "gone@example.com"}) }},
		{"contact without email", "contacts", `insert into keap.contacts (account_id, given_name, family_name, phone) values ($1, 'Gone', 'Phoneonly', '555-0142') returning id`, true,
			func(w *world) int {
				return contactsNamed(w, keap.ContactQuery{GivenName: "Gone", FamilyName: "Phoneonly"})
			}},
		{"order", "orders", `with o as (insert into keap.orders (account_id, contact_keap_id, title, order_type, order_date)
		    values ($1, (select min(keap_id) from keap.contacts), 'Gone order', 'Offline', now()) returning id)
		    insert into keap.order_items (account_id, order_id, product_id, quantity) select $1, id, 1, 1 from o returning order_id`, true,
			func(w *world) int {
				page, err := w.api.ListOrders(ctx, keap.OrderQuery{Limit: 1000})
				if err != nil {
					t.Fatal(err)
				}
				n := 0
				for _, o := range page.Items {
					if o.Title == "Gone order" {
						n++
					}
				}
				return n
			}},
		{"contact, deletes kept from Keap", "contacts", `insert into keap.contacts (account_id, given_name, email) values ($1, 'Kept', 'kept@example.com') returning id`, false,
			func(w *world) int { return contactsNamed(w, keap.ContactQuery{Email: "kept@example.com"}) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, 5)
			w.exec(`insert into keapsync.settings (account_id, propagate_deletes) values ($1, $2)`, w.account, tc.propagate)
			var id int64
			api := &answerLost{Keap: w.api}
			api.meanwhile = func() { w.exec(`delete from keap.`+tc.table+` where id = $1`, id) }
			w.start(w.pusher(w.config(func(context.Context, string) (push.Keap, error) { return api, nil })).Run)
			w.quiet()
			id = w.int(tc.insert, w.account)
			w.quiet()
			want := 0
			if !tc.propagate {
				want = 1
			}
			if n := tc.inKeap(w); n != want {
				t.Errorf("Keap holds %d of what the create made, want %d", n, want)
			}
			if n := w.int(`select count(*) from keapsync.dead_letters`); n != 0 {
				t.Errorf("%d dead letters", n)
			}
		})
	}
}

// Keap made the tag and the order, and its answers were lost: the retries find them and record
// them instead of making second ones.
func TestLostTagAndOrderCreatesAreFoundNotRepeated(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 5)
	ctx := context.Background()
	api := &lossy{Keap: w.api}
	api.lose.Store(2)
	w.start(w.pusher(w.config(func(context.Context, string) (push.Keap, error) { return api, nil })).Run)
	w.quiet()
	contact := w.int(`select min(keap_id) from keap.contacts`)
	w.exec(`insert into keap.tags (account_id, name) values ($1, 'Lost tag')`, w.account)
	w.exec(`with o as (insert into keap.orders (account_id, contact_keap_id, title, order_type, order_date)
	    values ($1, $2, 'Lost order', 'Offline', now()) returning id)
	    insert into keap.order_items (account_id, order_id, product_id, quantity) select $1, id, 1, 1 from o`, w.account, contact)
	w.quiet()
	if api.lose.Load() > 0 {
		t.Fatalf("not both answers were lost (%d left to lose): the test proves nothing", api.lose.Load())
	}
	tags, err := w.api.ListTags(ctx, keap.TagQuery{Name: "Lost tag", Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	orders, err := w.api.ListOrders(ctx, keap.OrderQuery{ContactID: keap.ID(contact), Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	lostOrders := 0
	for _, o := range orders.Items {
		if o.Title == "Lost order" {
			lostOrders++
		}
	}
	if len(tags.Items) != 1 || lostOrders != 1 {
		t.Errorf("Keap holds %d tags and %d orders from one create each", len(tags.Items), lostOrders)
	}
	if n := w.int(`select count(*) from keap.tags where name = 'Lost tag' and keap_id is not null`) +
		w.int(`select count(*) from keap.orders where title = 'Lost order' and keap_id is not null`); n != 2 {
		t.Errorf("%d of 2 Keap ids written back", n)
	}
	if n := w.int(`select count(*) from keapsync.dead_letters`); n != 0 {
		t.Errorf("%d dead letters", n)
	}
}

// An update Keap took whose answer was lost: the value Keap then holds is the push's own, not
// an edit made in Keap, so it cannot win a conflict against what was edited here since (here
// under keap_wins, where it always would).
func TestUpdateAnswerLost(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 5)
	ctx := context.Background()
	w.exec(`insert into keapsync.settings (account_id, default_policy) values ($1, 'keap_wins')`, w.account)
	id, kid := w.synced(0)
	api := &answerLost{Keap: w.api}
	api.meanwhile = func() {
		// Someone edits the row again, and Keap's hook for the lost update is applied.
		w.exec(`update keap.contacts set job_title = 'Second' where id = $1`, id)
		c, err := w.api.GetContact(ctx, keap.ID(kid), keap.PropCustomFields, keap.PropTagIDs, keap.PropJobTitle, keap.PropLeadSourceID)
		if err != nil {
			t.Error(err)
			return
		}
		w.exec(`select keapsync.apply_keap_record($1::uuid, 'contact', $2::jsonb)`, w.account, c.Raw)
	}
	w.start(w.pusher(w.config(func(context.Context, string) (push.Keap, error) { return api, nil })).Run)
	w.quiet()
	w.exec(`update keap.contacts set job_title = 'First' where id = $1`, id)
	w.quiet()
	if c := w.contact(kid); c.JobTitle != "Second" {
		t.Errorf("Keap holds job title %q, want the later local edit %q", c.JobTitle, "Second")
	}
	var local string
	if err := w.db.QueryRow(ctx, `select job_title from keap.contacts where id = $1`, id).Scan(&local); err != nil || local != "Second" {
		t.Errorf("local job title %q (%v), want %q", local, err, "Second")
	}
	if n := w.int(`select count(*) from keapsync.conflicts where local_id = $1`, id); n != 0 {
		t.Errorf("%d conflicts: the push's own value was taken for an edit made in Keap", n)
	}
}

func TestSetupErrors(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 1)
	ctx := context.Background()
	t.Run("slot of another plugin", func(t *testing.T) {
		w.exec(`select pg_create_logical_replication_slot($1, 'test_decoding')`, w.slot)
		defer w.exec(`select pg_drop_replication_slot($1)`, w.slot)
		if err := w.pusher(w.config(nil)).Check(ctx); !errors.Is(err, push.ErrSlotMismatch) {
			t.Errorf("got %v", err)
		}
	})
	t.Run("role without replication", func(t *testing.T) {
		role := "push_norepl_" + strings.TrimPrefix(w.slot, "push_test_")
		w.exec(`create role ` + role + ` login`)
		defer w.exec(`drop role ` + role)
		pcfg, err := pgxpool.ParseConfig(w.db.Config().ConnString())
		if err != nil {
			t.Fatal(err)
		}
		pcfg.ConnConfig.User = role
		pool, err := pgxpool.NewWithConfig(ctx, pcfg)
		if err != nil {
			t.Fatal(err)
		}
		defer pool.Close()
		cfg := w.config(nil)
		cfg.DB = pool
		if err := w.pusher(cfg).Check(ctx); !errors.Is(err, push.ErrNoReplication) {
			t.Errorf("got %v", err)
		}
		// The push path ends with the reason instead of retrying what only a person can fix.
		if err := w.pusher(cfg).Consume(ctx); !errors.Is(err, push.ErrNoReplication) {
			t.Errorf("Consume: %v", err)
		}
	})
	t.Run("slot held by another process", func(t *testing.T) {
		w.start(w.pusher(w.config(nil)).Consume)
		other := w.pusher(w.config(nil))
		var err error
		w.eventually("the slot to be reported busy", func() bool {
			err = other.Check(ctx)
			return errors.Is(err, push.ErrSlotBusy)
		})
		var busy *push.SlotBusyError
		if !errors.As(err, &busy) || busy.PID == 0 {
			t.Errorf("got %v", err)
		}
	})
}

// Postgres restarts under a running pusher (on a private cluster): it reconnects, resumes from
// the confirmed position, and edits on both sides of the restart reach Keap.
func TestPostgresRestart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cluster, stopCluster, err := pgtest.StartCluster(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stopCluster)
	url := cluster.URL("postgres")
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	mig, err := migrate.Embedded(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mig.Apply(ctx, conn); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	w := newWorldOn(t, sandbox.Options{Seed: 11, Contacts: 10, Unthrottled: true, Limits: roomy}, pool)
	w.start(w.pusher(w.config(nil)).Run)
	w.quiet()
	edit := func(from, to int, value string) {
		for i := from; i < to; i++ {
			id, _ := w.synced(i)
			w.exec(`update keap.contacts set job_title = $2 where id = $1`, id, value)
		}
	}
	edit(0, 5, "Before restart")
	if err := cluster.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := cluster.Start(ctx); err != nil {
		t.Fatal(err)
	}
	edit(3, 8, "After restart")
	w.quiet()
	for i, want := range map[int]string{0: "Before restart", 4: "After restart", 7: "After restart"} {
		_, kid := w.synced(i)
		if c := w.contact(kid); c.JobTitle != want {
			t.Errorf("contact %d: %q, want %q", kid, c.JobTitle, want)
		}
	}
}

// refusedThenGone refuses a contact's create with a 503 (Keap made nothing), and meanwhile the
// row is deleted here.
type refusedThenGone struct {
	failing
	meanwhile func()
}

func (r *refusedThenGone) CreateContact(ctx context.Context, body any) (*keap.Contact, error) {
	r.meanwhile()
	return nil, apiError(503)
}

func (f *failing) ListContacts(ctx context.Context, q keap.ContactQuery) (*keap.Page[keap.Contact], error) {
	if err := f.hit("ListContacts"); err != nil {
		return nil, err
	}
	return f.Keap.ListContacts(ctx, q)
}

// A contact deleted here after a create Keap refused with a 503: the create is marked, so the
// retry looks in Keap for what it may have made (a failed look is retried too), finds nothing,
// and deletes nothing there.
func TestDeletedAfterRefusedCreateDeletesNothingInKeap(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 3)
	w.propagateDeletes()
	var id int64
	api := &refusedThenGone{failing: failing{Keap: w.api}}
	api.meanwhile = func() { w.exec(`delete from keap.contacts where id = $1`, id) }
	api.fail("ListContacts", apiError(503), 1)
	w.start(w.pusher(w.config(func(context.Context, string) (push.Keap, error) { return api, nil })).Run)
	w.quiet()
	w.sb.ClearRequests()
	id = w.int(`insert into keap.contacts (account_id, given_name, family_name, phone) values ($1, 'Never', 'Made', '555-0123') returning id`, w.account)
	w.quiet()
	if api.armed("ListContacts") {
		t.Fatal("the look in Keap never ran: the case proves nothing")
	}
	if got := w.writes(); len(got) != 0 {
		t.Errorf("calls that change Keap: %v", got)
	}
	if n := w.int(`select count(*) from keapsync.dead_letters`); n != 0 {
		t.Errorf("%d dead letters", n)
	}
}
