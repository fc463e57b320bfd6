package push_test

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/keapsync/keapsync/sidecar/keap"
	"github.com/keapsync/keapsync/sidecar/push"
	"github.com/keapsync/keapsync/sidecar/sandbox"
)

// listings counts the sandbox's logged listings of contacts (GET /v1/contacts).
func (w *world) listings() int {
	n := 0
	for _, r := range w.sb.Requests() {
		if r.Method == "GET" && strings.HasSuffix(r.Path, "/v1/contacts") {
			n++
		}
	}
	return n
}

// fetchedFirst says, for each PATCH of contact kid in the request log, whether a GET of the
// contact came between it and the PATCH before it.
func (w *world) fetchedFirst(kid int64) []bool {
	suffix := "/contacts/" + strconv.FormatInt(kid, 10)
	var out []bool
	got := false
	for _, r := range w.sb.Requests() {
		if !strings.HasSuffix(r.Path, suffix) {
			continue
		}
		switch r.Method {
		case "GET":
			got = true
		case "PATCH":
			out = append(out, got)
			got = false
		}
	}
	return out
}

// editLocally gives contacts (local ids) a new job title, one transaction each, and waits until
// the edits are queued.
func (w *world) editLocally(title string, ids ...int64) {
	w.t.Helper()
	for _, id := range ids {
		w.exec(`update keap.contacts set job_title = $2 where id = $1`, id, title)
	}
	w.enqueued()
}

// pushDue pushes everything queued, due at once (due), and returns how many listings of
// contacts it made; the request log holds its calls only.
func (w *world) pushDue(p *push.Pusher) int {
	w.t.Helper()
	w.due()
	w.sb.ClearRequests()
	w.pushQueued(p)
	return w.listings()
}

// syncedFirst returns the local and Keap ids of the first n synced contacts.
func (w *world) syncedFirst(n int) (ids, kids []int64) {
	w.t.Helper()
	for i := range n {
		id, kid := w.synced(i)
		ids, kids = append(ids, id), append(kids, kid)
	}
	return ids, kids
}

// due makes everything queued due now (rested past any settle), so one claim takes it all.
func (w *world) due() {
	w.t.Helper()
	w.exec(`update keapsync.push_queue set first_enqueued_at = now() - interval '1 hour', last_enqueued_at = now() - interval '1 hour'`)
}

// Several due contact updates of one account read Keap once, with a listing of what changed
// since the versions held, instead of a GET each; the listing is that read. A Keap-side edit
// made after the local one, of the same field, is in the listing and wins under newest_wins,
// exactly as the per-record GET would make it win; an update sent without reading it (the
// listing ignored) would overwrite it. Under the hardest profile too: whole-second stamps and an
// exclusive `since` (the listing starts a second early).
func TestBatchedPrereadMeetsKeapEdit(t *testing.T) {
	t.Parallel()
	underProfiles(t, testBatchedPrereadMeetsKeapEdit)
}

func testBatchedPrereadMeetsKeapEdit(t *testing.T, profile sandbox.Profile) {
	w := newWorldWith(t, profileOptions(12, profile))
	p := w.pusher(w.config(nil)) // the default: no KnownFor
	w.start(p.Consume)
	w.enqueued()
	ids, kids := w.syncedFirst(4)
	w.editLocally("Set here", ids...)
	// The local edit an hour back, so Keap's (now) is the newer whatever the clocks' precision.
	w.exec(`update keapsync.sync_state set local_changed_at = jsonb_set(local_changed_at, '{job_title}', to_jsonb(now() - interval '1 hour'))
	    where local_id = $1`, ids[0])
	if err := w.sb.EditContact(kids[0], map[string]any{"job_title": "Set in Keap later"}); err != nil {
		t.Fatal(err)
	}
	if n := w.pushDue(p); n != 1 {
		t.Errorf("%d listings of contacts, want 1", n)
	}
	for i, kid := range kids {
		gets, _ := w.calls(kid)
		if gets != 0 {
			t.Errorf("contact %d: %d GETs of its own, want none (the listing read it)", i, gets)
		}
	}
	if c := w.contact(kids[0]); c.JobTitle != "Set in Keap later" {
		t.Errorf("Keap's later edit was overwritten: %q", c.JobTitle)
	}
	if n := w.int(`select count(*) from keap.contacts where id = $1 and job_title = 'Set in Keap later'`, ids[0]); n != 1 {
		t.Errorf("Keap's later edit did not win here")
	}
	for i, kid := range kids[1:] {
		if c := w.contact(kid); c.JobTitle != "Set here" {
			t.Errorf("contact %d: %q in Keap, want the local edit", i+1, c.JobTitle)
		}
	}
}

// A listing that would hold many more contacts than the updates it reads for is not made: the
// due contacts' versions are the account's oldest, so a listing from there holds all of them.
// Each update reads its contact with its own GET, as without the batched read.
func TestBatchedPrereadTooBigFallsBack(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 250) // more than prereadSmall (200)
	p := w.pusher(w.config(nil))
	w.start(p.Consume)
	w.enqueued()
	rows, err := w.db.Query(context.Background(), `select c.id, c.keap_id from keap.contacts c
	    join keapsync.sync_state s on s.local_id = c.id order by s.keap_modified limit 3`)
	if err != nil {
		t.Fatal(err)
	}
	var ids, kids []int64
	for rows.Next() {
		var id, kid int64
		if err := rows.Scan(&id, &kid); err != nil {
			t.Fatal(err)
		}
		ids, kids = append(ids, id), append(kids, kid)
	}
	w.editLocally("Old ones", ids...)
	if n := w.pushDue(p); n != 0 {
		t.Errorf("%d listings of contacts, want none", n)
	}
	for i, kid := range kids {
		if got := w.fetchedFirst(kid); len(got) != 1 || !got[0] {
			t.Errorf("contact %d: fetched before each PATCH: %v, want [true]", i, got)
		}
	}
}

// listingHook is a Keap client that calls after once a listing of contacts has been answered.
type listingHook struct {
	*keap.Client
	after func()
}

func (l *listingHook) ListContacts(ctx context.Context, q keap.ContactQuery) (*keap.Page[keap.Contact], error) {
	page, err := l.Client.ListContacts(ctx, q)
	if l.after != nil {
		l.after()
		l.after = nil
	}
	return page, err
}

// A contact edited here after the listing read it is not covered by that read: its update reads
// it again (a GET before its PATCH), while the others go on the listing's read.
func TestBatchedPrereadEditAfterListingFetches(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 12)
	ids, kids := w.syncedFirst(4)
	hook := &listingHook{Client: w.api}
	p := w.pusher(w.config(func(context.Context, string) (push.Keap, error) { return hook, nil }))
	w.start(p.Consume)
	w.enqueued()
	w.editLocally("Before the listing", ids...)
	hook.after = func() { w.editLocally("After the listing", ids[0]) }
	if n := w.pushDue(p); n != 1 {
		t.Errorf("%d listings of contacts, want 1", n)
	}
	if got := w.fetchedFirst(kids[0]); len(got) == 0 || !got[0] {
		t.Errorf("the contact edited after the listing: fetched before each PATCH: %v, want the first true", got)
	}
	for i, kid := range kids[1:] {
		if got := w.fetchedFirst(kid); len(got) != 1 || got[0] {
			t.Errorf("contact %d: fetched before each PATCH: %v, want [false]", i+1, got)
		}
	}
	if c := w.contact(kids[0]); c.JobTitle != "After the listing" {
		t.Errorf("contact edited after the listing: %q in Keap", c.JobTitle)
	}
}

// A contact the listing leaves out (Keap deleted it) is not taken as read: its update reads it
// itself, meets Keap's 404 and deletes it here, while the listed ones go on the listing's read.
func TestBatchedPrereadLeavesOutDeleted(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 12)
	p := w.pusher(w.config(nil))
	w.start(p.Consume)
	w.enqueued()
	ids, kids := w.syncedFirst(3)
	w.editLocally("Set here", ids...)
	if err := w.sb.DeleteContact(kids[0]); err != nil {
		t.Fatal(err)
	}
	if n := w.pushDue(p); n != 1 {
		t.Errorf("%d listings of contacts, want 1", n)
	}
	if gets, patches := w.calls(kids[0]); gets == 0 || patches != 0 {
		t.Errorf("the contact Keap deleted: %d GETs and %d PATCHes, want a GET and no PATCH", gets, patches)
	}
	if n := w.int(`select count(*) from keap.contacts where id = $1`, ids[0]); n != 0 {
		t.Error("the contact Keap deleted is still here")
	}
	for i, kid := range kids[1:] {
		if got := w.fetchedFirst(kid); len(got) != 1 || got[0] {
			t.Errorf("contact %d: fetched before each PATCH: %v, want [false]", i+1, got)
		}
	}
}
