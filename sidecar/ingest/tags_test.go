package ingest_test

import (
	"context"
	"regexp"
	"strconv"
	"testing"

	"github.com/keapsync/keapsync/sidecar/ingest"
)

var oneTag = regexp.MustCompile(`^/crm/rest/v1/tags/[0-9]+$`)

// Tags made in Keap arrive through one listing of all tags rather than a GET each: v1 tags
// cannot be listed by time, but a page of 1000 costs less than the changed ids' GETs.
func TestTagHooksFetchedByListing(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 5)
	ctx := context.Background()
	if err := w.sweeper.Backfill(ctx, w.account, []string{"tag"}); err != nil {
		t.Fatal(err)
	}
	if _, err := ingest.EnsureHooks(ctx, w.db, w.api, w.account, w.hooks.URL); err != nil {
		t.Fatal(err)
	}
	var made []int64
	for i := range 10 {
		id, err := w.sb.CreateTag("Made in Keap "+strconv.Itoa(i), "")
		if err != nil {
			t.Fatal(err)
		}
		made = append(made, id)
	}
	w.sb.FlushHooks()
	if err := w.sb.WaitHooksIdle(ctx); err != nil {
		t.Fatal(err)
	}
	w.sb.ClearRequests()
	w.worker.Window = 0
	w.drain(t)
	if got := w.count(t, `select count(*) from keap.tags where keap_id = any($1) and name like 'Made in Keap %'`, made); got != len(made) {
		t.Fatalf("%d of %d tags made in Keap arrived", got, len(made))
	}
	lists, gets := 0, 0
	for _, r := range w.sb.Requests() {
		switch {
		case r.Path == "/crm/rest/v1/tags":
			lists++
		case oneTag.MatchString(r.Path):
			gets++
		}
	}
	if lists != 1 || gets != 0 {
		t.Errorf("%d tag listings and %d single-tag GETs, want 1 and 0", lists, gets)
	}
}
