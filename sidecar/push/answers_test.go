package push_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/keapsync/keapsync/sidecar/keap"
	"github.com/keapsync/keapsync/sidecar/push"
)

// failing answers a Keap method with an error (or a tag refusal) instead of calling Keap, as Keap
// would with an error status: while set, or for a number of calls.
type failing struct {
	push.Keap
	mu    sync.Mutex
	errs  map[string]error
	times map[string]int // calls left to fail; 0: until cleared
}

// fail makes method fail with err, times calls (0: until cleared with a nil err).
func (f *failing) fail(method string, err error, times int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.errs == nil {
		f.errs, f.times = map[string]error{}, map[string]int{}
	}
	f.errs[method], f.times[method] = err, times
}

func (f *failing) hit(method string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	err := f.errs[method]
	if err != nil && f.times[method] > 0 {
		if f.times[method]--; f.times[method] == 0 {
			f.errs[method] = nil
		}
	}
	return err
}

// armed says whether method is still set to fail.
func (f *failing) armed(method string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.errs[method] != nil
}

// errTagRefused stands for Keap's per-tag answer other than SUCCESS to an apply.
var errTagRefused = errors.New("tag refused")

func (f *failing) CreateTag(ctx context.Context, in keap.TagInput) (*keap.Tag, error) {
	if err := f.hit("CreateTag"); err != nil {
		return nil, err
	}
	return f.Keap.CreateTag(ctx, in)
}

func (f *failing) ListTags(ctx context.Context, q keap.TagQuery) (*keap.Page[keap.Tag], error) {
	if err := f.hit("ListTags"); err != nil {
		return nil, err
	}
	return f.Keap.ListTags(ctx, q)
}

func (f *failing) CreateOrder(ctx context.Context, in keap.OrderInput) (*keap.Order, error) {
	if err := f.hit("CreateOrder"); err != nil {
		return nil, err
	}
	return f.Keap.CreateOrder(ctx, in)
}

func (f *failing) GetOrder(ctx context.Context, id keap.ID) (*keap.Order, error) {
	if err := f.hit("GetOrder"); err != nil {
		return nil, err
	}
	return f.Keap.GetOrder(ctx, id)
}

func (f *failing) ListOrders(ctx context.Context, q keap.OrderQuery) (*keap.Page[keap.Order], error) {
	if err := f.hit("ListOrders"); err != nil {
		return nil, err
	}
	return f.Keap.ListOrders(ctx, q)
}

func (f *failing) CreateObject(ctx context.Context, path string, body any) (*keap.Object, error) {
	if err := f.hit("CreateObject"); err != nil {
		return nil, err
	}
	return f.Keap.CreateObject(ctx, path, body)
}

func (f *failing) UpdateObject(ctx context.Context, path string, id keap.ID, body any, mask ...string) (*keap.Object, error) {
	if err := f.hit("UpdateObject"); err != nil {
		return nil, err
	}
	return f.Keap.UpdateObject(ctx, path, id, body, mask...)
}

func (f *failing) DeleteObject(ctx context.Context, path string, id keap.ID) error {
	if err := f.hit("DeleteObject"); err != nil {
		return err
	}
	return f.Keap.DeleteObject(ctx, path, id)
}

func (f *failing) GetContact(ctx context.Context, id keap.ID, optional ...string) (*keap.Contact, error) {
	if err := f.hit("GetContact"); err != nil {
		return nil, err
	}
	return f.Keap.GetContact(ctx, id, optional...)
}

func (f *failing) ApplyTags(ctx context.Context, contact keap.ID, tags ...keap.ID) (keap.TagResults, error) {
	err := f.hit("ApplyTags")
	if errors.Is(err, errTagRefused) {
		res := keap.TagResults{}
		for _, id := range tags {
			res[id] = "FAILURE"
		}
		return res, nil
	}
	if err != nil {
		return nil, err
	}
	return f.Keap.ApplyTags(ctx, contact, tags...)
}

func (f *failing) RemoveTags(ctx context.Context, contact keap.ID, tags ...keap.ID) error {
	if err := f.hit("RemoveTags"); err != nil {
		return err
	}
	return f.Keap.RemoveTags(ctx, contact, tags...)
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
	api := &failing{Keap: w.api}
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
	parks := func(objectType string, local int64, status int) {
		t.Helper()
		w.eventually(objectType+" parked", func() bool { _, ok := parked(objectType, local); return ok })
		if got, _ := parked(objectType, local); got != status {
			t.Errorf("parked with status %d, want %d", got, status)
		}
		if n := w.int(`select count(*) from keapsync.push_queue where object_type = $1 and local_id = $2`, objectType, local); n != 0 {
			t.Errorf("a parked %s is still queued", objectType)
		}
		w.exec(`select keapsync.discard_dead_letter(id) from keapsync.dead_letters where object_type = $1 and local_id = $2`, objectType, local)
	}

	t.Run("a 400 for a tag's create parks it", func(t *testing.T) {
		api.fail("CreateTag", apiError(400), 0)
		defer api.fail("CreateTag", nil, 0)
		tag := w.int(`insert into keap.tags (account_id, name) values ($1, 'Refused tag') returning id`, w.account)
		w.enqueued()
		parks("tag", tag, 400)
	})
	t.Run("a 422 for a company's update parks it", func(t *testing.T) {
		api.fail("UpdateObject", apiError(422), 0)
		defer api.fail("UpdateObject", nil, 0)
		w.exec(`update keap.companies set website = 'https://refused.example' where id = $1`, company)
		w.enqueued()
		parks("company", company, 422)
	})
	t.Run("a tag Keap will not apply parks the contact", func(t *testing.T) {
		api.fail("ApplyTags", errTagRefused, 0)
		defer api.fail("ApplyTags", nil, 0)
		contact, _ := w.synced(0)
		w.exec(`insert into keap.contact_tags (account_id, contact_id, tag_id)
		    select $1, $2, min(id) from keap.tags t where keap_id is not null
		       and not exists (select 1 from keap.contact_tags ct where ct.contact_id = $2 and ct.tag_id = t.id)`, w.account, contact)
		w.enqueued()
		parks("contact", contact, 400)
	})
	for _, tc := range []struct {
		name, method string
		err          error
		says         string
	}{
		{"a 503", "CreateTag", apiError(503), "503"},
		{"a 429", "CreateTag", apiError(429), "429"},
		{"a 401", "CreateTag", apiError(401), "401"},
		{"a failed look for the first try's tag", "ListTags", apiError(502), "502"},
	} {
		t.Run(tc.name+" for a tag's create retries it until Keap takes it", func(t *testing.T) {
			if tc.method == "ListTags" {
				api.fail("CreateTag", apiError(503), 1) // the first try is marked, so the next one looks
			}
			api.fail(tc.method, tc.err, 0)
			name := "Retried tag " + tc.says
			tag := w.int(`insert into keap.tags (account_id, name) values ($1, $2) returning id`, w.account, name)
			w.enqueued()
			retried("tag", tag, tc.says)
			api.fail(tc.method, nil, 0)
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
	for _, tc := range []struct{ name, method, set string }{
		{"the read before an update", "GetContact", `job_title = 'After a failed read'`},
		{"a tag's apply", "ApplyTags", ""},
		{"a tag's removal", "RemoveTags", ""},
	} {
		t.Run("a 503 for "+tc.name+" retries the contact", func(t *testing.T) {
			contact, kid := w.synced(1)
			switch tc.method {
			case "GetContact":
				w.exec(`update keap.contacts set `+tc.set+` where id = $1`, contact)
			case "ApplyTags":
				w.exec(`insert into keap.contact_tags (account_id, contact_id, tag_id)
				    select $1, $2, min(id) from keap.tags t where keap_id is not null
				       and not exists (select 1 from keap.contact_tags ct where ct.contact_id = $2 and ct.tag_id = t.id)`, w.account, contact)
			case "RemoveTags":
				w.exec(`delete from keap.contact_tags where contact_id = $1 and tag_id = (select min(tag_id) from keap.contact_tags where contact_id = $1)`, contact)
			}
			api.fail(tc.method, apiError(503), 0)
			w.enqueued()
			retried("contact", contact, "503")
			api.fail(tc.method, nil, 0)
			w.quiet()
			if n := w.int(`select count(*) from keapsync.pending_push($1, 'contact', $2) p where p ->> 'op' <> 'none'`, w.account, contact); n != 0 {
				t.Errorf("contact %d (Keap %d) still differs from Keap after the retry", contact, kid)
			}
		})
	}
	t.Run("a 500 for a company's delete retries it", func(t *testing.T) {
		api.fail("DeleteObject", apiError(500), 0)
		kid := w.int(`select keap_id from keap.companies where id = $1`, company)
		w.exec(`delete from keap.companies where id = $1`, company)
		w.enqueued()
		retried("company", company, "500")
		api.fail("DeleteObject", nil, 0)
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

// An order's create meets a failed call at each step: the create itself (Keap made nothing), the
// read of what it made (Keap made it), the look for what the first try made. Each is retried, and
// Keap ends up with one order, recorded here.
func TestOrderCreateSurvivesFailedCalls(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 3)
	api := &failing{Keap: w.api}
	w.start(w.pusher(w.config(func(context.Context, string) (push.Keap, error) { return api, nil })).Run)
	w.quiet()
	ctx := context.Background()
	contact := w.int(`select min(keap_id) from keap.contacts`)
	for _, tc := range []struct {
		name  string
		fails []string // methods that fail once, in this order of calls
	}{
		{"create refused with a 503", []string{"CreateOrder"}},
		{"read back failed", []string{"GetOrder"}},
		{"look for the first try failed", []string{"CreateOrder", "ListOrders"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, m := range tc.fails {
				api.fail(m, apiError(503), 1)
			}
			title := "Order, " + tc.name
			id := w.int(`with o as (insert into keap.orders (account_id, contact_keap_id, title, order_type, order_date)
			    values ($1, $2, $3, 'Offline', now()) returning id)
			    insert into keap.order_items (account_id, order_id, product_id, quantity) select $1, id, 1, 1 from o returning order_id`,
				w.account, contact, title)
			w.quiet()
			for _, m := range tc.fails {
				if api.armed(m) {
					t.Fatalf("%s never failed: the case proves nothing", m)
				}
			}
			page, err := w.api.ListOrders(ctx, keap.OrderQuery{ContactID: keap.ID(contact), Limit: 1000})
			if err != nil {
				t.Fatal(err)
			}
			made := 0
			for _, o := range page.Items {
				if o.Title == title {
					made++
					if w.int(`select count(*) from keap.orders where id = $1 and keap_id = $2`, id, int64(o.ID)) != 1 {
						t.Errorf("Keap's order %d is not the one recorded here", o.ID)
					}
				}
			}
			if made != 1 {
				t.Errorf("Keap holds %d orders %q, want 1", made, title)
			}
			if n := w.int(`select count(*) from keapsync.dead_letters`); n != 0 {
				t.Errorf("%d dead letters", n)
			}
		})
	}
}
