package ingest_test

import (
	"context"
	"encoding/json"
	"errors"
	"iter"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keapsync/keapsync/sidecar/ingest"
	"github.com/keapsync/keapsync/sidecar/keap"
)

// errLost is what a statement answers over a connection lost mid-work: not PostgreSQL refusing
// the statement, so nothing is the record's fault.
var errLost = errors.New("test: connection to the database lost")

// flakyDB is a real pool whose statements fail with errLost while their SQL contains a text
// set with failOn; "begin" fails Begin (and savepoints), "commit" fails a transaction's Commit,
// "release savepoint" a savepoint's. It is the
// database going away in the middle of a piece of work, at a chosen step.
type flakyDB struct {
	*pgxpool.Pool
	mu    sync.Mutex
	fails map[string]int // text → failures left; < 0: every time
	seen  map[string]int // text → failures so far
}

func newFlakyDB(pool *pgxpool.Pool) *flakyDB {
	return &flakyDB{Pool: pool, fails: map[string]int{}, seen: map[string]int{}}
}

// failOn makes the next n statements containing text fail (n < 0: all of them).
func (f *flakyDB) failOn(text string, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fails[text] = n
}

// heal ends every failure.
func (f *flakyDB) heal() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.fails)
}

// failed is how many statements containing text failed.
func (f *flakyDB) failed(text string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.seen[text]
}

func (f *flakyDB) fail(sql string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for text, n := range f.fails {
		if n != 0 && strings.Contains(sql, text) {
			if n > 0 {
				f.fails[text] = n - 1
			}
			f.seen[text]++
			return errLost
		}
	}
	return nil
}

func (f *flakyDB) Begin(ctx context.Context) (pgx.Tx, error) {
	if err := f.fail("begin"); err != nil {
		return nil, err
	}
	tx, err := f.Pool.Begin(ctx)
	if err != nil {
		return nil, err
	}
	return &flakyTx{Tx: tx, db: f}, nil
}

func (f *flakyDB) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if err := f.fail(sql); err != nil {
		return pgconn.CommandTag{}, err
	}
	return f.Pool.Exec(ctx, sql, args...)
}

func (f *flakyDB) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if err := f.fail(sql); err != nil {
		return nil, err
	}
	return f.Pool.Query(ctx, sql, args...)
}

func (f *flakyDB) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	if err := f.fail(sql); err != nil {
		return errRow{err}
	}
	return f.Pool.QueryRow(ctx, sql, args...)
}

type flakyTx struct {
	pgx.Tx
	db        *flakyDB
	savepoint bool
}

func (t *flakyTx) Begin(ctx context.Context) (pgx.Tx, error) {
	if err := t.db.fail("begin"); err != nil {
		return nil, err
	}
	sp, err := t.Tx.Begin(ctx)
	if err != nil {
		return nil, err
	}
	return &flakyTx{Tx: sp, db: t.db, savepoint: true}, nil
}

func (t *flakyTx) Commit(ctx context.Context) error {
	step := "commit"
	if t.savepoint {
		step = "release savepoint"
	}
	if err := t.db.fail(step); err != nil {
		_ = t.Tx.Rollback(ctx)
		return err
	}
	return t.Tx.Commit(ctx)
}

func (t *flakyTx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if err := t.db.fail(sql); err != nil {
		return pgconn.CommandTag{}, err
	}
	return t.Tx.Exec(ctx, sql, args...)
}

func (t *flakyTx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if err := t.db.fail(sql); err != nil {
		return nil, err
	}
	return t.Tx.Query(ctx, sql, args...)
}

func (t *flakyTx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	if err := t.db.fail(sql); err != nil {
		return errRow{err}
	}
	return t.Tx.QueryRow(ctx, sql, args...)
}

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// keapWith is a Keap client with some of its answers replaced: Keap misbehaving at one call in
// a way the sandbox does not. A nil field passes the call on.
type keapWith struct {
	ingest.Keap
	getModel      func(ctx context.Context, path string) (json.RawMessage, error)
	listContacts  func(ctx context.Context, q keap.ContactQuery) (*keap.Page[keap.Contact], error)
	contactsSince func(ctx context.Context, since time.Time, q keap.ContactQuery) iter.Seq2[keap.Contact, error]
	orderPayments func(ctx context.Context, orderID keap.ID) ([]keap.Payment, error)
}

func (k *keapWith) GetModel(ctx context.Context, path string) (json.RawMessage, error) {
	if k.getModel != nil {
		return k.getModel(ctx, path)
	}
	return k.Keap.GetModel(ctx, path)
}

func (k *keapWith) ListContacts(ctx context.Context, q keap.ContactQuery) (*keap.Page[keap.Contact], error) {
	if k.listContacts != nil {
		return k.listContacts(ctx, q)
	}
	return k.Keap.ListContacts(ctx, q)
}

func (k *keapWith) ContactsSince(ctx context.Context, since time.Time, q keap.ContactQuery) iter.Seq2[keap.Contact, error] {
	if k.contactsSince != nil {
		return k.contactsSince(ctx, since, q)
	}
	return k.Keap.ContactsSince(ctx, since, q)
}

func (k *keapWith) OrderPayments(ctx context.Context, orderID keap.ID) ([]keap.Payment, error) {
	if k.orderPayments != nil {
		return k.orderPayments(ctx, orderID)
	}
	return k.Keap.OrderPayments(ctx, orderID)
}

// keapDown is Keap's answer while it is down.
var keapDown = &keap.APIError{Status: 503, Message: "Service Unavailable", Body: []byte(`{"message":"down"}`)}

// useKeap makes the world's worker and sweeper talk to api.
func (w *world) useKeap(api ingest.Keap) {
	apiOf := func(context.Context, string) (ingest.Keap, error) { return api, nil }
	w.worker.API, w.sweeper.API = apiOf, apiOf
}
