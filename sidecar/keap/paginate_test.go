package keap

import (
	"context"
	"testing"
	"time"

	"github.com/keapsync/keapsync/sidecar/sandbox"
)

func TestPaginationEveryRecordOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{sandbox: sandbox.Options{Contacts: 103, Seed: 6}})
	c, ctx := e.client, context.Background()
	for _, q := range []ContactQuery{
		{Limit: 7},
		{Limit: 10, Order: OrderByLastUpdated, Descending: true},
		{Limit: 1000, OptionalProperties: []string{PropCustomFields}},
		{Limit: 50, Order: OrderByEmail},
	} {
		seen := map[ID]int{}
		for ct, err := range c.Contacts(ctx, q) {
			if err != nil {
				t.Fatal(err)
			}
			seen[ct.ID]++
		}
		if len(seen) != 103 {
			t.Fatalf("%+v: %d distinct contacts, want 103", q, len(seen))
		}
		for id, n := range seen {
			if n != 1 {
				t.Fatalf("%+v: contact %d seen %d times", q, id, n)
			}
		}
	}
	// Stopping early stops fetching.
	e.srv.ClearRequests()
	n := 0
	for _, err := range c.Contacts(ctx, ContactQuery{Limit: 5}) {
		if err != nil {
			t.Fatal(err)
		}
		if n++; n == 7 {
			break
		}
	}
	if r := len(e.srv.Requests()); r != 2 {
		t.Fatalf("breaking after 7 of 5-per-page made %d requests, want 2", r)
	}
}

func TestSinceUntil(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{sandbox: sandbox.Options{Contacts: 40, Seed: 7}})
	c, ctx := e.client, context.Background()
	all, err := Collect(c.Contacts(ctx, ContactQuery{Order: OrderByLastUpdated}))
	if err != nil {
		t.Fatal(err)
	}
	since, until := all[10].LastUpdated.Time, all[30].LastUpdated.Time
	mid, err := Collect(c.Contacts(ctx, ContactQuery{Since: since, Until: until, Limit: 6, Order: OrderByLastUpdated}))
	if err != nil {
		t.Fatal(err)
	}
	// since is inclusive and until exclusive (both on last_updated, at millisecond precision).
	if len(mid) != 20 || mid[0].ID != all[10].ID || mid[19].ID != all[29].ID {
		t.Fatalf("since/until: %d contacts", len(mid))
	}

	e.clock.Advance(time.Hour)
	if err := e.srv.EditContact(int64(all[5].ID), map[string]any{"given_name": "Changed"}); err != nil {
		t.Fatal(err)
	}
	changed, err := Collect(c.ContactsSince(ctx, e.clock.Now().Add(-time.Minute), ContactQuery{}))
	if err != nil || len(changed) != 1 || changed[0].ID != all[5].ID || changed[0].GivenName != "Changed" {
		t.Fatalf("incremental: %+v %v", changed, err)
	}
}

// A record changed during an incremental walk moves behind the cursor: the timestamp walk
// meets it again and skips nothing, where offset paging would skip the record that slid
// into the page already read.
func TestContactsSinceNoSkipWhileChanging(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{sandbox: sandbox.Options{Contacts: 60, Seed: 8}})
	c, ctx := e.client, context.Background()
	seen := map[ID]int{}
	n := 0
	for ct, err := range c.ContactsSince(ctx, time.Time{}, ContactQuery{Limit: 10}) {
		if err != nil {
			t.Fatal(err)
		}
		seen[ct.ID]++
		if n++; n%10 == 3 && n < 60 {
			// Someone edits a contact we have already read.
			if err := e.srv.EditContact(int64(ct.ID), map[string]any{"job_title": "moved"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(seen) != 60 {
		t.Fatalf("walk saw %d distinct contacts, want all 60", len(seen))
	}
	again := 0
	for _, k := range seen {
		again += k - 1
	}
	if again == 0 {
		t.Fatal("edited contacts were not met again behind the cursor")
	}
}
