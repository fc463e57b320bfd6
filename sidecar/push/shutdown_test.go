package push_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/keapsync/keapsync/sidecar/devtools/pgtest"
	"github.com/keapsync/keapsync/sidecar/keap"
	"github.com/keapsync/keapsync/sidecar/push"
)

// blockingRead holds every contact read until its context ends, as a slow Keap would while the
// sidecar shuts down: a GET, or the listing that reads several due contacts at once.
type blockingRead struct {
	push.Keap
	entered chan struct{}
}

func (b *blockingRead) block(ctx context.Context) error {
	select {
	case b.entered <- struct{}{}:
	default:
	}
	<-ctx.Done()
	return ctx.Err()
}

func (b *blockingRead) GetContact(ctx context.Context, id keap.ID, optional ...string) (*keap.Contact, error) {
	return nil, b.block(ctx)
}

func (b *blockingRead) ListContacts(ctx context.Context, q keap.ContactQuery) (*keap.Page[keap.Contact], error) {
	return nil, b.block(ctx)
}

// Shutdown in the middle of a claimed batch: the record in flight and those not started stay
// queued as they were (no attempt counted, nothing parked), and none of them stays locked, so
// any connection of any process can push them once the lease ends.
func TestShutdownMidBatchLeavesClaimedRecordsQueuedAndUnlocked(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 5)
	api := &blockingRead{Keap: w.api, entered: make(chan struct{}, 1)}
	p := w.pusher(w.config(func(context.Context, string) (push.Keap, error) { return api, nil }))
	for i := range 3 {
		id, _ := w.synced(i)
		w.exec(`update keap.contacts set job_title = 'Interrupted' where id = $1`, id)
		w.exec(`select keapsync.enqueue_push($1, 'contact', $2, null)`, w.account, id)
	}
	w.exec(`update keapsync.push_queue set first_enqueued_at = now() - interval '1 minute', last_enqueued_at = now() - interval '1 minute'`)
	ctx, cancel := context.WithCancel(context.Background())
	type result struct {
		n   int
		err error
	}
	done := make(chan result, 1)
	go func() {
		n, err := p.PushOnce(ctx)
		done <- result{n, err}
	}()
	<-api.entered
	cancel()
	if r := <-done; r.err != nil {
		t.Fatalf("PushOnce cut short by shutdown: %v", r.err)
	}
	if n := w.int(`select count(*) from keapsync.push_queue where attempts = 0 and last_error is null`); n != 3 {
		t.Errorf("%d of 3 records queued as they were", n)
	}
	if n := w.int(`select count(*) from keapsync.dead_letters`); n != 0 {
		t.Errorf("%d dead letters", n)
	}
	if n := w.int(`select count(*) from pg_locks where locktype = 'advisory'
	    and database = (select oid from pg_database where datname = current_database())`); n != 0 {
		t.Errorf("%d records still locked by a connection back in the pool", n)
	}
}

// With the database gone a push round says so, and claims nothing.
func TestPushRoundWithTheDatabaseGone(t *testing.T) {
	t.Parallel()
	db := pgtest.Pool(t)
	cfg := push.DefaultConfig()
	cfg.DB = db
	cfg.API = func(context.Context, string) (push.Keap, error) { return nil, errors.New("no Keap in this test") }
	p, err := push.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	n, err := p.PushOnce(context.Background())
	if n != 0 || err == nil || !strings.Contains(err.Error(), "acquire connection") {
		t.Errorf("PushOnce with the database gone: %d, %v", n, err)
	}
}
