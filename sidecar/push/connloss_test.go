package push_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/keapsync/keapsync/sidecar/keap"
	"github.com/keapsync/keapsync/sidecar/push"
)

// cutting ends the worker's database session right after one Keap call, once: Keap has
// answered (or refused), and nothing of it can be recorded on that session.
type cutting struct {
	failing
	w      *world
	method string
	once   sync.Once
}

func (c *cutting) cut(method string) {
	if method != c.method {
		return
	}
	c.once.Do(func() {
		// The worker's session is the one holding the record's advisory lock.
		c.w.exec(`select pg_terminate_backend(pid, 10000) from pg_locks where locktype = 'advisory'
		    and database = (select oid from pg_database where datname = current_database())`)
	})
}

func (c *cutting) CreateTag(ctx context.Context, in keap.TagInput) (*keap.Tag, error) {
	defer c.cut("CreateTag")
	return c.failing.CreateTag(ctx, in)
}

func (c *cutting) ListTags(ctx context.Context, q keap.TagQuery) (*keap.Page[keap.Tag], error) {
	defer c.cut("ListTags")
	return c.failing.ListTags(ctx, q)
}

func (c *cutting) UpsertContact(ctx context.Context, dup string, body any) (*keap.Contact, error) {
	defer c.cut("UpsertContact")
	return c.failing.UpsertContact(ctx, dup, body)
}

func (c *cutting) ApplyTags(ctx context.Context, contact keap.ID, tags ...keap.ID) (keap.TagResults, error) {
	defer c.cut("ApplyTags")
	return c.failing.ApplyTags(ctx, contact, tags...)
}

func (c *cutting) GetContact(ctx context.Context, id keap.ID, optional ...string) (*keap.Contact, error) {
	defer c.cut("GetContact")
	return c.failing.GetContact(ctx, id, optional...)
}

// The database connection is lost between Keap's answer and its record: nothing is lost, since
// the queue row is still there; once the lease ends the record is pushed again (the calls are
// safe to repeat, and a create is looked for) and recorded once: a refusal parked once, a tag
// applied, an update sent, one tag and one contact made in Keap.
func TestConnectionLostAfterKeapAnswered(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		method string
		edit   string // $1 account, $2 a synced contact's local id
	}{
		{"CreateTag", `insert into keap.tags (account_id, name) values ($1, 'Refused once, parked once') returning $2::bigint`},
		{"ApplyTags", `insert into keap.contact_tags (account_id, contact_id, tag_id)
		    select $1, $2, min(id) from keap.tags t where keap_id is not null
		       and not exists (select 1 from keap.contact_tags ct where ct.contact_id = $2 and ct.tag_id = t.id) returning contact_id`},
		{"GetContact", `update keap.contacts set job_title = 'After a lost connection' where id = $2 and account_id = $1 returning id`},
		// A tag's create that failed once is looked for before it is sent again: the session is
		// lost after the look, before the create is marked again.
		{"ListTags", `insert into keap.tags (account_id, name) values ($1, 'Looked for, then lost') returning $2::bigint`},
		// A contact's create is recorded on its own before its tags: the session is lost before.
		{"UpsertContact", `insert into keap.contacts (account_id, given_name, email) values ($1, 'Lost', 'lost.session@example.com') returning $2::bigint`},
	} {
		t.Run(tc.method, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, 3)
			api := &cutting{failing: failing{Keap: w.api}, w: w, method: tc.method}
			switch tc.method {
			case "CreateTag":
				api.fail("CreateTag", apiError(400), 0)
			case "ListTags":
				api.fail("CreateTag", apiError(503), 1)
			}
			cfg := w.config(func(context.Context, string) (push.Keap, error) { return api, nil })
			cfg.Lease = 300 * time.Millisecond
			w.start(w.pusher(cfg).Run)
			w.quiet()
			id, kid := w.synced(0)
			w.int(tc.edit, w.account, id)
			w.quiet()
			switch tc.method {
			case "CreateTag":
				if n := w.int(`select count(*) from keapsync.dead_letters where object_type = 'tag' and status = 'parked' and attempts = 1`); n != 1 {
					t.Errorf("%d dead letters parked once for the refused tag, want 1", n)
				}
			case "ApplyTags":
				tag := w.int(`select max(t.keap_id) from keap.contact_tags ct join keap.tags t on t.id = ct.tag_id where ct.contact_id = $1`, id)
				if c := w.contact(kid); !slices.Contains(c.TagIDs, keap.ID(tag)) {
					t.Errorf("tag %d not on the contact in Keap: %v", tag, c.TagIDs)
				}
			case "GetContact":
				if c := w.contact(kid); c.JobTitle != "After a lost connection" {
					t.Errorf("job title in Keap %q", c.JobTitle)
				}
			case "ListTags":
				page, err := w.api.ListTags(context.Background(), keap.TagQuery{Name: "Looked for, then lost", Limit: 100})
				if err != nil {
					t.Fatal(err)
				}
				if len(page.Items) != 1 || w.int(`select count(*) from keap.tags where keap_id = $1`, int64(page.Items[0].ID)) != 1 {
					t.Errorf("%d tags in Keap, want 1, recorded here", len(page.Items))
				}
			case "UpsertContact":
				page, err := w.api.ListContacts(context.Background(), keap.ContactQuery{Email: "lost.session@example.com"})
				if err != nil {
					t.Fatal(err)
				}
				if len(page.Items) != 1 || w.int(`select count(*) from keap.contacts where keap_id = $1`, int64(page.Items[0].ID)) != 1 {
					t.Errorf("%d contacts in Keap, want 1, recorded here", len(page.Items))
				}
			}
			if tc.method != "CreateTag" {
				if n := w.int(`select count(*) from keapsync.dead_letters`); n != 0 {
					t.Errorf("%d dead letters", n)
				}
			}
			if n := w.int(`select count(*) from keapsync.pending_push($1, 'contact', $2) p where p ->> 'op' <> 'none'`, w.account, id); n != 0 {
				t.Error("the contact still differs from Keap")
			}
		})
	}
}
