package push_test

import (
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/keapsync/keapsync/sidecar/devtools/testlog"
)

// Local changes made before the push slot existed (between the migrations and serve's first
// start, or while a slot was being made again) reach Keap: a new slot streams only later
// commits, so the pusher queues them from sync_state each time it starts streaming.
func TestPushesChangesMadeBeforeTheSlot(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 5)
	w.propagateDeletes()
	edited, editedKeap := w.synced(0)
	deleted, deletedKeap := w.synced(1)
	w.exec(`update keap.contacts set job_title = 'Before the slot' where id = $1`, edited)
	created := w.int(`insert into keap.contacts (account_id, given_name, email) values ($1, 'Early', 'early@example.com') returning id`, w.account)
	w.exec(`delete from keap.contacts where id = $1`, deleted)

	// The first starts cannot catch up (the function is out of reach): streaming stops and
	// starts again until it can, so nothing is lost.
	w.exec(`alter function keapsync.enqueue_unstreamed() rename to enqueue_unstreamed_away`)
	cfg := w.config(nil)
	var log testlog.Buffer
	cfg.Log = slog.New(slog.NewTextHandler(io.MultiWriter(testlog.Writer(t), &log), nil))
	stop := w.start(w.pusher(cfg).Run)
	w.eventually("a start that fails to catch up", func() bool { return log.Has("queue the local changes not yet pushed") })
	if got := w.writes(); len(got) != 0 {
		t.Fatalf("pushed before catching up: %v", got)
	}
	w.exec(`alter function keapsync.enqueue_unstreamed_away() rename to enqueue_unstreamed`)
	w.quiet()
	var calls []string
	for _, c := range w.writes() {
		calls = append(calls, strings.SplitN(c, "?", 2)[0])
	}
	slices.Sort(calls)
	want := []string{"DELETE /v1/contacts/" + strconv.FormatInt(deletedKeap, 10),
		"PATCH /v1/contacts/" + strconv.FormatInt(editedKeap, 10), "PUT /v1/contacts"}
	if !slices.Equal(calls, want) {
		t.Fatalf("calls %v, want %v (and no push of the records only Keap changed)", calls, want)
	}
	if c := w.contact(editedKeap); c.JobTitle != "Before the slot" {
		t.Errorf("edited contact in Keap: %+v", c)
	}
	if w.int(`select count(*) from keap.contacts where id = $1 and keap_id is not null`, created) != 1 {
		t.Error("the contact created before the slot has no Keap id")
	}

	// A restart queues nothing already pushed.
	stop()
	w.sb.ClearRequests()
	w.start(w.pusher(w.config(nil)).Run)
	w.quiet()
	if got := w.writes(); len(got) != 0 {
		t.Fatalf("a restart pushed again: %v", got)
	}
	if n := w.int(`select keapsync.enqueue_unstreamed()`); n != 0 {
		t.Fatalf("%d records still seen as not pushed", n)
	}
}
