package push_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/keapsync/keapsync/sidecar/keap"
	"github.com/keapsync/keapsync/sidecar/push"
)

// failingWrites answers every write with err while it is set, as Keap would with an error
// status; reads go through.
type failingWrites struct {
	push.Keap
	err atomic.Pointer[error]
}

func (f *failingWrites) fail(err error) { f.err.Store(&err) }

func (f *failingWrites) failure() error {
	if e := f.err.Load(); e != nil {
		return *e
	}
	return nil
}

func (f *failingWrites) CreateTag(ctx context.Context, in keap.TagInput) (*keap.Tag, error) {
	if err := f.failure(); err != nil {
		return nil, err
	}
	return f.Keap.CreateTag(ctx, in)
}

func (f *failingWrites) CreateObject(ctx context.Context, path string, body any) (*keap.Object, error) {
	if err := f.failure(); err != nil {
		return nil, err
	}
	return f.Keap.CreateObject(ctx, path, body)
}

func (f *failingWrites) UpdateObject(ctx context.Context, path string, id keap.ID, body any, mask ...string) (*keap.Object, error) {
	if err := f.failure(); err != nil {
		return nil, err
	}
	return f.Keap.UpdateObject(ctx, path, id, body, mask...)
}

func (f *failingWrites) DeleteObject(ctx context.Context, path string, id keap.ID) error {
	if err := f.failure(); err != nil {
		return err
	}
	return f.Keap.DeleteObject(ctx, path, id)
}

func apiError(status int) error {
	return &keap.APIError{Status: status, Message: "test", Method: "POST", Endpoint: "/test"}
}

// What Keap's answer means for the record: a 4xx about the record parks it with its status;
// a 5xx, a 429, a 401 (the credentials, not the record) and an account whose Keap client
// cannot be had keep it queued and counted, and it goes through once Keap takes it.
func TestKeapAnswersParkOrRetry(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 3)
	api := &failingWrites{Keap: w.api}
	var noClient atomic.Bool
	w.propagateDeletes()
	w.start(w.pusher(w.config(func(context.Context, string) (push.Keap, error) {
		if noClient.Load() {
			return nil, errors.New("the budget share of the account's tenant failed")
		}
		return api, nil
	})).Run)
	w.quiet()
	company := w.int(`insert into keap.companies (account_id, company_name) values ($1, 'Steady Co') returning id`, w.account)
	w.quiet()
	ctx := context.Background()
	parked := func(objectType string, local int64) (status int, ok bool) {
		t.Helper()
		err := w.db.QueryRow(ctx, `select coalesce(http_status, 0) from keapsync.dead_letters where source = 'push'
		    and object_type = $1 and local_id = $2 and status = 'parked'`, objectType, local).Scan(&status)
		return status, err == nil
	}
	retried := func(objectType string, local int64, says string) {
		t.Helper()
		w.eventually(objectType+" retried", func() bool {
			return w.int(`select count(*) from keapsync.push_queue where object_type = $1 and local_id = $2
			    and attempts > 0 and last_error like '%' || $3 || '%'`, objectType, local, says) == 1
		})
		if _, ok := parked(objectType, local); ok {
			t.Errorf("%s %d parked for a failure that is not the record's", objectType, local)
		}
	}

	t.Run("a 400 for a tag's create parks it", func(t *testing.T) {
		api.fail(apiError(400))
		defer api.fail(nil)
		tag := w.int(`insert into keap.tags (account_id, name) values ($1, 'Refused tag') returning id`, w.account)
		w.enqueued()
		w.eventually("the tag parked", func() bool { _, ok := parked("tag", tag); return ok })
		if status, _ := parked("tag", tag); status != 400 {
			t.Errorf("parked with status %d, want 400", status)
		}
		if n := w.int(`select count(*) from keapsync.push_queue where object_type = 'tag' and local_id = $1`, tag); n != 0 {
			t.Error("a parked tag is still queued")
		}
	})
	t.Run("a 422 for a company's update parks it", func(t *testing.T) {
		api.fail(apiError(422))
		defer api.fail(nil)
		w.exec(`update keap.companies set website = 'https://refused.example' where id = $1`, company)
		w.enqueued()
		w.eventually("the company parked", func() bool { _, ok := parked("company", company); return ok })
		if status, _ := parked("company", company); status != 422 {
			t.Errorf("parked with status %d, want 422", status)
		}
		w.exec(`select keapsync.discard_dead_letter(id) from keapsync.dead_letters where local_id = $1`, company)
	})
	for _, tc := range []struct {
		name string
		err  error
		says string
	}{
		{"a 503", apiError(503), "503"},
		{"a 429", apiError(429), "429"},
		{"a 401", apiError(401), "401"},
	} {
		t.Run(tc.name+" for a tag's create retries it until Keap takes it", func(t *testing.T) {
			api.fail(tc.err)
			name := "Retried tag " + tc.says
			tag := w.int(`insert into keap.tags (account_id, name) values ($1, $2) returning id`, w.account, name)
			w.enqueued()
			retried("tag", tag, tc.says)
			api.fail(nil)
			w.quiet()
			page, err := w.api.ListTags(ctx, keap.TagQuery{Name: name, Limit: 100})
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Items) != 1 || w.int(`select count(*) from keap.tags where id = $1 and keap_id = $2`, tag, int64(page.Items[0].ID)) != 1 {
				t.Errorf("after Keap recovered: %d tags named %q in Keap, the local one's id written back: %v", len(page.Items), name,
					w.int(`select count(*) from keap.tags where id = $1 and keap_id is not null`, tag) == 1)
			}
		})
	}
	t.Run("a 500 for a company's delete retries it", func(t *testing.T) {
		api.fail(apiError(500))
		kid := w.int(`select keap_id from keap.companies where id = $1`, company)
		w.exec(`delete from keap.companies where id = $1`, company)
		w.enqueued()
		retried("company", company, "500")
		api.fail(nil)
		w.quiet()
		if _, err := w.api.GetObject(ctx, "/v2/companies", keap.ID(kid)); !errors.Is(err, keap.ErrNotFound) {
			t.Errorf("the company deleted here, in Keap after the retry: %v", err)
		}
	})
	t.Run("an account without a Keap client waits", func(t *testing.T) {
		noClient.Store(true)
		tag := w.int(`insert into keap.tags (account_id, name) values ($1, 'Waiting tag') returning id`, w.account)
		w.enqueued()
		retried("tag", tag, "budget share")
		noClient.Store(false)
		w.quiet()
		if n := w.int(`select count(*) from keap.tags where id = $1 and keap_id is not null`, tag); n != 1 {
			t.Error("the tag did not reach Keap once the client could be had")
		}
	})
}
