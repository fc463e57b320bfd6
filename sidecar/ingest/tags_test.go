package ingest_test

import (
	"context"
	"regexp"
	"strconv"
	"testing"

	"github.com/keapsync/keapsync/sidecar/ingest"
)

var oneTag = regexp.MustCompile(`^/crm/rest/v1/tags/[0-9]+$`)

// Tags made in Keap arrive through one v2 listing of them by id, rather than a GET each or a
// walk of every tag (v1 lists tags neither by time nor by id).
func TestTagHooksFetchedByID(t *testing.T) {
	t.Parallel()
	names := make([]string, 10)
	for i := range names {
		names[i] = "Made in Keap " + strconv.Itoa(i)
	}
	w, made := tagsMadeInKeap(t, names...)
	w.drain(t)
	if got := w.count(t, `select count(*) from keap.tags where keap_id = any($1) and name like 'Made in Keap %'`, made); got != len(made) {
		t.Fatalf("%d of %d tags made in Keap arrived", got, len(made))
	}
	byID, whole, gets := 0, 0, 0
	for _, r := range w.sb.Requests() {
		switch {
		case r.Path == "/crm/rest/v2/tags":
			byID++
		case r.Path == "/crm/rest/v1/tags":
			whole++
		case oneTag.MatchString(r.Path):
			gets++
		}
	}
	if byID != 1 || whole != 0 || gets != 0 || len(w.sb.Requests()) != 1 {
		t.Errorf("%d listings by id, %d of every tag, %d single-tag GETs (%d calls); want 1, 0, 0 (1)", byID, whole, gets, len(w.sb.Requests()))
	}
}

// A tag named with a NUL among a batch of hooked tags read through v2 harms only itself, as
// through v1: it is stored without the NUL and parked with its original, and the tags beside it
// arrive.
func TestNULTagInABatchReadByID(t *testing.T) {
	t.Parallel()
	w, made := tagsMadeInKeap(t, "Fine 1", "VIP\x00customers", "Fine 2", "Fine 3")
	w.worker.ListThreshold = 1
	w.drain(t)
	if got := w.count(t, `select count(*) from keap.tags where keap_id = any($1) and name in ('Fine 1', 'Fine 2', 'Fine 3', 'VIPcustomers')`, made); got != 4 {
		t.Errorf("%d of 4 tags arrived (the NUL one without its NUL)", got)
	}
	if got := w.count(t, `select count(*) from keapsync.dead_letters where object_type = 'tag' and keap_id = $1
	    and payload ->> 'original' like '%VIP\\u0000customers%'`, made[1]); got != 1 {
		t.Errorf("%d dead letters keep the NUL tag's original; want one", got)
	}
	for _, r := range w.sb.Requests() {
		if r.Path != "/crm/rest/v2/tags" {
			t.Errorf("the batch was not read through v2 by id alone: %s %s", r.Method, r.Path)
		}
	}
}

// tagsMadeInKeap is a world whose tags were backfilled, with hooks subscribed, in which a person
// then made tags of these names in Keap; their hooks are delivered, the request log is cleared
// and the worker reads every delivery at once. It returns the tags' Keap ids.
func tagsMadeInKeap(t *testing.T, names ...string) (*world, []int64) {
	t.Helper()
	w := newWorld(t, 5)
	ctx := context.Background()
	if err := w.sweeper.Backfill(ctx, w.account, []string{"tag"}); err != nil {
		t.Fatal(err)
	}
	if _, err := ingest.EnsureHooks(ctx, w.db, w.api, w.account, w.hooks.URL); err != nil {
		t.Fatal(err)
	}
	var made []int64
	for _, name := range names {
		id, err := w.sb.CreateTag(name, "")
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
	return w, made
}
