package push_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keapsync/keapsync/sidecar/devtools/pgtest"
	"github.com/keapsync/keapsync/sidecar/keap"
	"github.com/keapsync/keapsync/sidecar/sandbox"
)

// A commit is in the WAL, and so in the stream, a moment before other sessions see it. A
// synchronous standby that never answers stretches that moment at will: the committing session
// waits for it after writing its commit record and before its change becomes visible. A pusher
// that queued the change at once had a worker read the record as it was before, push nothing
// and take it off the queue: the new tag never reached Keap (seen under load as a tag create
// that was never tried, a company delete sent as an update, a product delete lost).
func TestChangesArePushedOnlyOnceVisible(t *testing.T) {
	t.Parallel()
	// synchronous_standby_names holds every commit of a cluster: this one's own.
	w := newWorldOn(t, sandbox.Options{Seed: 11, Contacts: 3, Unthrottled: true, Limits: roomy}, pgtest.PrivatePool(t))
	ctx := context.Background()
	// The pusher's own commits do not wait for the standby (its queue writes would be held too).
	pc := w.db.Config().Copy()
	pc.ConnConfig.RuntimeParams["synchronous_commit"] = "local"
	own, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(own.Close)
	cfg := w.config(nil)
	cfg.DB = own
	w.start(w.pusher(cfg).Run)
	w.quiet()

	w.exec(`alter system set synchronous_standby_names = 'keapsync_test_nobody'`)
	w.exec(`select pg_reload_conf()`)
	released := false
	release := func() {
		if !released {
			released = true
			w.exec(`alter system reset synchronous_standby_names`)
			w.exec(`select pg_reload_conf()`)
		}
	}
	defer release()
	w.eventually("the standby setting to hold commits", func() bool {
		return w.int(`select count(*) from pg_settings where name = 'synchronous_standby_names' and setting <> ''`) == 1
	})

	conn, err := pgx.Connect(ctx, w.db.Config().ConnString())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	committed := make(chan error, 1)
	go func() {
		_, err := conn.Exec(ctx, `insert into keap.tags (account_id, name) values ($1, 'Seen late')`, w.account)
		committed <- err
	}()
	w.eventually("the insert's commit to wait for the standby", func() bool {
		return w.int(`select count(*) from pg_stat_activity where wait_event = 'SyncRep'`) == 1
	})
	// The commit record is written: wait until the pusher's stream has carried it, then give
	// the pusher many times what it takes to queue and claim a change (flush 10 ms, settle
	// 20 ms, poll 10 ms) while the change is still unseen.
	w.eventually("the stream to carry the commit", func() bool {
		return w.int(`select count(*) from pg_stat_replication where application_name = 'keapsync-push'
		    and sent_lsn >= pg_current_wal_flush_lsn()`) == 1
	})
	time.Sleep(500 * time.Millisecond)
	if n := w.int(`select count(*) from keap.tags where name = 'Seen late'`); n != 0 {
		t.Fatal("the held commit is visible: the test holds nothing")
	}
	release()
	if err := <-committed; err != nil {
		t.Fatal(err)
	}
	w.quiet()
	var kid int64
	if err := w.db.QueryRow(ctx, `select coalesce(keap_id, 0) from keap.tags where name = 'Seen late'`).Scan(&kid); err != nil {
		t.Fatal(err)
	}
	if kid == 0 {
		t.Fatalf("the tag committed while a worker could not see it never reached Keap (calls %v)", w.writes())
	}
	page, err := w.api.ListTags(ctx, keap.TagQuery{Name: "Seen late", Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 1 || int64(page.Items[0].ID) != kid {
		t.Errorf("in Keap: %d tags named so, want one with id %d", len(page.Items), kid)
	}
}
