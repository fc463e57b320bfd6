package push_test

import (
	"context"
	"testing"

	"github.com/keapsync/keapsync/sidecar/keap"
	"github.com/keapsync/keapsync/sidecar/push"
)

// Without the fetch before an update (FetchBeforeUpdate off), a list sent still starts from
// Keap's current contact, read just for it: a failed read retries the record; a contact Keap
// deleted is deleted here, whether the read or the PATCH meets the 404.
func TestUpdateWithoutTheFetch(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 5)
	api := &failing{Keap: w.api}
	cfg := w.config(func(context.Context, string) (push.Keap, error) { return api, nil })
	cfg.FetchBeforeUpdate = false
	w.start(w.pusher(cfg).Run)
	w.quiet()

	t.Run("a failed read for a list is retried", func(t *testing.T) {
		id, kid := w.synced(0)
		api.fail("GetContact", apiError(503), 1)
		w.exec(`update keap.contacts set phone = '555-0777' where id = $1`, id)
		w.quiet()
		if api.armed("GetContact") {
			t.Fatal("the read never failed: the case proves nothing")
		}
		if c := w.contact(kid); len(c.PhoneNumbers) == 0 || c.PhoneNumbers[0].Number != "555-0777" {
			t.Errorf("phones in Keap after the retry: %+v", c.PhoneNumbers)
		}
	})
	for i, tc := range []struct{ name, set string }{
		{"the read for a list meets Keap's delete", `phone = '555-0888'`},
		{"the PATCH meets Keap's delete", `job_title = 'Gone'`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, kid := w.synced(i + 1)
			if err := w.sb.DeleteContact(kid); err != nil {
				t.Fatal(err)
			}
			w.exec(`update keap.contacts set `+tc.set+` where id = $1`, id)
			w.quiet()
			if n := w.int(`select count(*) from keap.contacts where id = $1`, id); n != 0 {
				t.Error("the contact Keap deleted is still here")
			}
			if _, err := w.api.GetContact(context.Background(), keap.ID(kid)); err == nil {
				t.Error("the contact is back in Keap")
			}
		})
	}
	if n := w.int(`select count(*) from keapsync.dead_letters`); n != 0 {
		t.Errorf("%d dead letters", n)
	}
}
