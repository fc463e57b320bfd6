package push_test

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/keapsync/keapsync/sidecar/ingest"
	"github.com/keapsync/keapsync/sidecar/keap"
	"github.com/keapsync/keapsync/sidecar/sandbox"
)

// synced returns a backfilled contact's local and Keap ids, the n-th by id.
func (w *world) synced(n int) (int64, int64) {
	w.t.Helper()
	var local, kid int64
	if err := w.db.QueryRow(context.Background(),
		`select id, keap_id from keap.contacts where keap_id is not null order by id offset $1 limit 1`, n).Scan(&local, &kid); err != nil {
		w.t.Fatal(err)
	}
	return local, kid
}

func TestPushesLocalEdits(t *testing.T) {
	t.Parallel()
	underProfiles(t, testPushesLocalEdits)
}

func testPushesLocalEdits(t *testing.T, profile sandbox.Profile) {
	w := newWorldWith(t, profileOptions(20, profile))
	w.start(w.pusher(w.config(nil)).Run)
	w.quiet()
	if got := w.writes(); len(got) != 0 {
		t.Fatalf("the backfill (Keap's own writes) was pushed back: %v", got)
	}

	t.Run("insert with email: PUT create-or-update, id written back", func(t *testing.T) {
		w.sb.ClearRequests()
		id := w.int(`insert into keap.contacts (account_id, given_name, family_name, email) values ($1, 'Ada', 'Lovelace', 'ada@example.com') returning id`, w.account)
		w.quiet()
		kid := w.int(`select coalesce(keap_id, 0) from keap.contacts where id = $1`, id)
		if kid == 0 {
			t.Fatal("no Keap id written back")
		}
		if c := w.contact(kid); c.GivenName != "Ada" || c.Email() != "ada@example.com" {
			t.Errorf("in Keap: %+v", c)
		}
		if got := w.writes(); !slices.Equal(got, []string{"PUT /v1/contacts"}) {
			t.Errorf("calls: %v", got)
		}
	})

	t.Run("insert without email: POST", func(t *testing.T) {
		w.sb.ClearRequests()
		id := w.int(`insert into keap.contacts (account_id, given_name, family_name, phone) values ($1, 'Phone', 'Only', '555-0100') returning id`, w.account)
		w.quiet()
		kid := w.int(`select coalesce(keap_id, 0) from keap.contacts where id = $1`, id)
		if kid == 0 {
			t.Fatal("no Keap id written back")
		}
		if got := w.writes(); !slices.Equal(got, []string{"POST /v1/contacts"}) {
			t.Errorf("calls: %v", got)
		}
	})

	t.Run("update: one PATCH with only the changed fields", func(t *testing.T) {
		w.sb.ClearRequests()
		id, kid := w.synced(0)
		w.exec(`update keap.contacts set given_name = 'Grace', job_title = 'Admiral' where id = $1`, id)
		w.quiet()
		got := w.writes()
		if len(got) != 1 || !strings.HasPrefix(got[0], "PATCH /v1/contacts/"+strconv.FormatInt(kid, 10)+"?") {
			t.Fatalf("calls: %v", got)
		}
		q, _ := url.ParseQuery(strings.SplitN(got[0], "?", 2)[1])
		if mask := q["update_mask"]; !sameSet(mask, []string{"given_name", "job_title"}) {
			t.Errorf("update_mask %v", mask)
		}
		if c := w.contact(kid); c.GivenName != "Grace" || c.JobTitle != "Admiral" {
			t.Errorf("in Keap: given %q job %q", c.GivenName, c.JobTitle)
		}
		if op := w.int(`select count(*) from keapsync.pending_push($1, 'contact', $2) p where p ->> 'op' <> 'none'`, w.account, id); op != 0 {
			t.Error("the record still looks pending after the push")
		}
	})

	t.Run("tags applied and removed", func(t *testing.T) {
		w.sb.ClearRequests()
		id, kid := w.synced(1)
		var tagID, tagKeap int64
		if err := w.db.QueryRow(context.Background(), `select id, keap_id from keap.tags t where keap_id is not null
		    and not exists (select 1 from keap.contact_tags ct where ct.contact_id = $1 and ct.tag_id = t.id) order by id limit 1`, id).Scan(&tagID, &tagKeap); err != nil {
			t.Fatal(err)
		}
		w.exec(`insert into keap.contact_tags (account_id, contact_id, tag_id) values ($1, $2, $3)`, w.account, id, tagID)
		w.quiet()
		if c := w.contact(kid); !slices.Contains(c.TagIDs, keap.ID(tagKeap)) {
			t.Errorf("tag %d not applied in Keap: %v (calls %v)", tagKeap, c.TagIDs, w.writes())
		}
		w.exec(`delete from keap.contact_tags where contact_id = $1 and tag_id = $2`, id, tagID)
		w.quiet()
		if c := w.contact(kid); slices.Contains(c.TagIDs, keap.ID(tagKeap)) {
			t.Errorf("tag %d still on the contact in Keap (calls %v)", tagKeap, w.writes())
		}
		want := []string{"POST /v1/contacts/" + strconv.FormatInt(kid, 10) + "/tags",
			"DELETE /v1/contacts/" + strconv.FormatInt(kid, 10) + "/tags/" + strconv.FormatInt(tagKeap, 10)}
		if got := w.writes(); !slices.Equal(got, want) {
			t.Errorf("calls %v, want %v", got, want)
		}
	})

	t.Run("new tag, applied before it reached Keap", func(t *testing.T) {
		w.sb.ClearRequests()
		id, kid := w.synced(4)
		tag := w.int(`with t as (insert into keap.tags (account_id, name) values ($1, 'Local tag') returning id)
		    insert into keap.contact_tags (account_id, contact_id, tag_id) select $1, $2, id from t returning tag_id`, w.account, id)
		w.quiet()
		tagKeap := w.int(`select coalesce(keap_id, 0) from keap.tags where id = $1`, tag)
		if tagKeap == 0 {
			t.Fatalf("no Keap id for the new tag (calls %v)", w.writes())
		}
		if c := w.contact(kid); !slices.Contains(c.TagIDs, keap.ID(tagKeap)) {
			t.Errorf("new tag not applied in Keap: %v (calls %v)", c.TagIDs, w.writes())
		}
	})

	t.Run("new order: created with its items, kept as Keap serves it", func(t *testing.T) {
		w.sb.ClearRequests()
		_, kid := w.synced(3)
		id := w.int(`with o as (insert into keap.orders (account_id, contact_keap_id, title, order_type, order_date)
		    values ($1, $2, 'Local order', 'Offline', now()) returning id)
		    insert into keap.order_items (account_id, order_id, product_id, quantity, price) select $1, id, 1, 2, 10.25 from o
		    returning order_id`, w.account, kid)
		w.quiet()
		if got := w.writes(); !slices.Equal(got, []string{"POST /v1/orders"}) {
			t.Errorf("calls: %v", got)
		}
		var keapID int64
		var typ, source, total string
		if err := w.db.QueryRow(context.Background(), `select coalesce(keap_id, 0), coalesce(order_type, ''),
		    coalesce(source_type, ''), coalesce(total::text, '') from keap.orders where id = $1`, id).Scan(&keapID, &typ, &source, &total); err != nil {
			t.Fatal(err)
		}
		// Keap's answer to the create carries neither order type nor source type; they must not
		// be cleared by it.
		if keapID == 0 || typ != "Offline" || source != "API" || total != "20.50" {
			t.Errorf("local order after the push: keap id %d, type %q, source %q, total %s", keapID, typ, source, total)
		}
		if o, err := w.api.GetOrder(context.Background(), keap.ID(keapID)); err != nil || o.Title != "Local order" {
			t.Errorf("in Keap: %+v, %v", o, err)
		}
	})

	t.Run("what Keap's API cannot do is parked with the reason", func(t *testing.T) {
		w.exec(`update keap.tags set name = 'Renamed' where keap_id is not null and id = (select min(id) from keap.tags where keap_id is not null)`)
		w.quiet()
		var msg string
		var status *int
		if err := w.db.QueryRow(context.Background(), `select error, http_status from keapsync.dead_letters
		    where source = 'push' and object_type = 'tag'`).Scan(&msg, &status); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(msg, "no tag update") || status != nil {
			t.Errorf("dead letter %q %v", msg, status)
		}
	})

	t.Run("delete: propagated only when the account says so", func(t *testing.T) {
		w.sb.ClearRequests()
		kept, keptKeap := w.synced(2)
		w.exec(`delete from keap.contacts where id = $1`, kept)
		w.quiet()
		if got := w.writes(); len(got) != 0 {
			t.Errorf("an unpropagated delete made calls: %v", got)
		}
		w.contact(keptKeap) // still in Keap

		w.propagateDeletes()
		gone, goneKeap := w.synced(2)
		w.exec(`delete from keap.contacts where id = $1`, gone)
		w.quiet()
		if _, err := w.api.GetContact(context.Background(), keap.ID(goneKeap)); !errors.Is(err, keap.ErrNotFound) {
			t.Errorf("deleted contact still in Keap: %v", err)
		}
		if got := w.writes(); !slices.Equal(got, []string{"DELETE /v1/contacts/" + strconv.FormatInt(goneKeap, 10)}) {
			t.Errorf("calls: %v", got)
		}
		if n := w.int(`select count(*) from keapsync.sync_state where local_id = $1 and object_type = 'contact'`, gone); n != 0 {
			t.Error("sync state of the deleted contact is left")
		}
	})
}

// Changes applied on behalf of Keap (a reconcile here; hooks use the same apply) make no calls.
func TestNoEcho(t *testing.T) {
	t.Parallel()
	underProfiles(t, testNoEcho)
}

func testNoEcho(t *testing.T, profile sandbox.Profile) {
	w := newWorldWith(t, profileOptions(10, profile))
	w.start(w.pusher(w.config(nil)).Run)
	w.quiet()
	_, kid := w.synced(3)
	if err := w.sb.EditContact(kid, map[string]any{"given_name": "FromKeap", "job_title": "Echo?"}); err != nil {
		t.Fatal(err)
	}
	created, err := w.sb.CreateContact(map[string]any{"given_name": "BornInKeap",
		"email_addresses": []map[string]string{{"email": "born@example.com", "field": "EMAIL1"}}})
	if err != nil {
		t.Fatal(err)
	}
	sweeper := &ingest.Sweeper{DB: w.db, API: func(context.Context, string) (ingest.Keap, error) { return w.api, nil }}
	if err := sweeper.Reconcile(context.Background(), w.account, []string{"contact"}); err != nil {
		t.Fatal(err)
	}
	if n := w.int(`select count(*) from keap.contacts where keap_id in ($1, $2) and given_name in ('FromKeap', 'BornInKeap')`, kid, created); n != 2 {
		t.Fatalf("the Keap changes did not arrive (%d of 2)", n)
	}
	w.sb.ClearRequests()
	w.quiet()
	if got := w.writes(); len(got) != 0 {
		t.Errorf("echo calls: %v", got)
	}
}

// Ten quick edits of one record are one call carrying the final values.
func TestCoalescing(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 5)
	p := w.pusher(w.config(nil))
	w.start(p.Consume)
	w.enqueued()
	id, kid := w.synced(0)
	for i := range 10 {
		w.exec(`update keap.contacts set job_title = $2 where id = $1`, id, "Edit "+strconv.Itoa(i))
	}
	w.enqueued()
	if n := w.int(`select count(*) from keapsync.push_queue`); n != 1 {
		t.Fatalf("%d queue rows for one record", n)
	}
	w.sb.ClearRequests()
	w.start(p.Work)
	w.quiet()
	if got := w.writes(); len(got) != 1 || !strings.Contains(got[0], "update_mask=job_title") {
		t.Errorf("calls: %v", got)
	}
	if c := w.contact(kid); c.JobTitle != "Edit 9" {
		t.Errorf("job title in Keap %q", c.JobTitle)
	}
}

// Not parallel: its 2000 pushes take the machine's cores, and a test beside it would make
// both crawl toward their time bound.
func TestBulkUpdate(t *testing.T) {
	t.Parallel()
	// One statement's changes span several of the consumer's batches (500 rows, batches of 200),
	// as 2,000 rows spanned two of the default 1,000: the flushes inside one transaction are what
	// this proves. Scale is the benchmarks' (BenchmarkSlotThroughput: 10,000 rows through the
	// consumer; BenchmarkBacklogDrain: 1,000 contacts pushed); 2,000 rows here took a quarter of
	// the package's CPU.
	const rows, batch = 500, 200
	w := newWorld(t, rows)
	cfg := w.config(nil)
	cfg.BatchSize = batch
	w.start(w.pusher(cfg).Run)
	w.quiet()
	n := w.int(`select count(*) from keap.contacts`)
	w.sb.ClearRequests()
	w.exec(`update keap.contacts set job_title = 'Bulk ' || id`)
	w.quiet()
	patches := 0
	for _, c := range w.writes() {
		if strings.HasPrefix(c, "PATCH /v1/contacts/") && strings.HasSuffix(c, "?update_mask=job_title") {
			patches++
		} else {
			t.Errorf("unexpected call %s", c)
		}
	}
	if int64(patches) != n {
		t.Errorf("%d PATCHes for %d updated contacts", patches, n)
	}
	id, kid := w.synced(rows / 2)
	if c := w.contact(kid); c.JobTitle != "Bulk "+strconv.FormatInt(id, 10) {
		t.Errorf("job title in Keap %q", c.JobTitle)
	}
}

// Edits made while Keap fails (5xx, then a 429 storm) arrive once it recovers; the queue, not
// the slot, holds them meanwhile.
func TestKeapOutage(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 10)
	w.start(w.pusher(w.config(nil)).Run)
	w.quiet()
	for round, faults := range []sandbox.Faults{{ErrorRate: 1}, {Storm429: 40}} {
		w.sb.SetFaults(faults)
		for i := range 5 {
			id, _ := w.synced(i)
			w.exec(`update keap.contacts set job_title = $2 where id = $1`, id, "Outage "+strconv.Itoa(round*10+i))
		}
		w.enqueued() // confirmed although Keap is down
		if faults.ErrorRate > 0 {
			w.eventually("failed attempts to be recorded", func() bool {
				return w.int(`select count(*) from keapsync.push_queue where attempts > 0 and last_error is not null`) == 5
			})
			w.sb.SetFaults(sandbox.Faults{})
		}
		w.quiet()
		w.sb.SetFaults(sandbox.Faults{}) // what is left of a storm would hit the checks below
		if faults.Storm429 > 0 && throttled(w.sb.Requests()) == 0 {
			t.Error("no push met the 429 storm")
		}
		for i := range 5 {
			_, kid := w.synced(i)
			if c := w.contact(kid); c.JobTitle != "Outage "+strconv.Itoa(round*10+i) {
				t.Errorf("after %+v: contact %d job title %q", faults, kid, c.JobTitle)
			}
		}
	}
	if n := w.int(`select count(*) from keapsync.dead_letters`); n != 0 {
		t.Errorf("%d dead letters from transient failures", n)
	}
}

// Keap's 400 for one record parks it; the others flow.
func TestRefusedRecordIsParked(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 10)
	w.start(w.pusher(w.config(nil)).Run)
	w.quiet()
	bad, _ := w.synced(0)
	good, goodKeap := w.synced(1)
	w.exec(`update keap.contacts set region = 'CA', country_code = null where id = $1`, bad)
	w.exec(`update keap.contacts set job_title = 'Flows' where id = $1`, good)
	w.quiet()
	var status int
	var msg string
	if err := w.db.QueryRow(context.Background(), `select http_status, error from keapsync.dead_letters
	    where source = 'push' and object_type = 'contact' and local_id = $1 and status = 'parked'`, bad).Scan(&status, &msg); err != nil {
		t.Fatalf("no dead letter: %v", err)
	}
	if status != 400 || !strings.Contains(msg, "country_code") {
		t.Errorf("dead letter %d %q", status, msg)
	}
	if c := w.contact(goodKeap); c.JobTitle != "Flows" {
		t.Errorf("the good record did not flow: %q", c.JobTitle)
	}
	// Fixed and retried through the SQL function the dashboard and CLI use.
	w.exec(`update keap.contacts set country_code = 'US' where id = $1`, bad)
	w.retry(w.int(`select id from keapsync.dead_letters where local_id = $1`, bad))
	w.quiet()
	if n := w.int(`select count(*) from keapsync.pending_push($1, 'contact', $2) p where p ->> 'op' <> 'none'`, w.account, bad); n != 0 {
		t.Error("the fixed record was not pushed")
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func throttled(log []sandbox.RequestRecord) int {
	n := 0
	for _, r := range log {
		if r.Status == 429 {
			n++
		}
	}
	return n
}

// A field changed in Keap since the agreed state meets the conflict policy before the push
// (here keap_wins): Keap's value stays, the other local change goes out.
func TestConflictAtPushTime(t *testing.T) {
	t.Parallel()
	underProfiles(t, testConflictAtPushTime)
}

func testConflictAtPushTime(t *testing.T, profile sandbox.Profile) {
	w := newWorldWith(t, profileOptions(5, profile))
	w.exec(`insert into keapsync.conflict_policies (account_id, object_type, field, policy) values ($1, 'contact', '*', 'keap_wins')`, w.account)
	w.start(w.pusher(w.config(nil)).Run)
	w.quiet()
	id, kid := w.synced(0)
	if err := w.sb.EditContact(kid, map[string]any{"job_title": "Set in Keap"}); err != nil {
		t.Fatal(err)
	}
	w.sb.ClearRequests()
	w.exec(`update keap.contacts set job_title = 'Set here', given_name = 'Only here' where id = $1`, id)
	w.quiet()
	c := w.contact(kid)
	if c.JobTitle != "Set in Keap" || c.GivenName != "Only here" {
		t.Errorf("in Keap: job %q given %q", c.JobTitle, c.GivenName)
	}
	if got := w.writes(); len(got) != 1 || !strings.HasSuffix(got[0], "?update_mask=given_name") {
		t.Errorf("calls: %v", got)
	}
	if n := w.int(`select count(*) from keap.contacts where id = $1 and job_title = 'Set in Keap'`, id); n != 1 {
		t.Error("Keap's value did not win locally")
	}
	if n := w.int(`select count(*) from keapsync.conflicts where local_id = $1 and field = 'job_title' and resolution = 'keap'`, id); n != 1 {
		t.Error("no conflict recorded")
	}
}

// A local edit (or tag) of a contact someone deleted in Keap meanwhile: Keap's confirmed delete
// wins, as when its hook arrives. The row goes (the history keeps it); nothing is parked or sent.
func TestEditOfContactDeletedInKeap(t *testing.T) {
	t.Parallel()
	underProfiles(t, testEditOfContactDeletedInKeap)
}

func testEditOfContactDeletedInKeap(t *testing.T, profile sandbox.Profile) {
	w := newWorldWith(t, profileOptions(5, profile))
	w.start(w.pusher(w.config(nil)).Run)
	w.quiet()
	edited, editedKeap := w.synced(0)
	tagged, taggedKeap := w.synced(1)
	for _, kid := range []int64{editedKeap, taggedKeap} {
		if err := w.sb.DeleteContact(kid); err != nil {
			t.Fatal(err)
		}
	}
	w.sb.ClearRequests()
	w.exec(`update keap.contacts set job_title = 'Too late' where id = $1`, edited)
	w.exec(`insert into keap.contact_tags (account_id, contact_id, tag_id)
	    select c.account_id, c.id, t.id from keap.contacts c, keap.tags t
	     where c.id = $1 and t.account_id = c.account_id and t.keap_id is not null
	       and not exists (select 1 from keap.contact_tags x where x.contact_id = c.id and x.tag_id = t.id) limit 1`, tagged)
	w.quiet()
	if n := w.int(`select count(*) from keap.contacts where id in ($1, $2)`, edited, tagged); n != 0 {
		t.Errorf("%d contacts Keap deleted are still here", n)
	}
	if n := w.int(`select count(*) from keapsync.dead_letters`); n != 0 {
		t.Errorf("%d dead letters", n)
	}
	// Refused calls only: the tag call, and the PATCH when it went without the fetch first
	// (the backfill's version is known current), which then meets the delete.
	tagCalls := 0
	for _, c := range w.writes() {
		switch {
		case strings.Contains(c, "/tags"):
			tagCalls++
		case strings.HasPrefix(c, "PATCH /v1/contacts/"+strconv.FormatInt(editedKeap, 10)+"?"):
		default:
			t.Errorf("write to Keap: %s", c)
		}
	}
	if tagCalls != 1 {
		t.Errorf("writes to Keap: %v (want one refused tag call)", w.writes())
	}
	if n := w.int(`select count(*) from keapsync.change_history where row_id = $1 and op = 'delete' and origin = 'keap'
	    and old_row ->> 'job_title' = 'Too late'`, edited); n != 1 {
		t.Error("the history does not keep the deleted row with its local edit")
	}
}
