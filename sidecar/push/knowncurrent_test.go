package push_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keapsync/keapsync/sidecar/push"
)

// pushQueued pushes everything queued so far with p's workers' own round (PushOnce), so a test
// can change the queue row or the sync state between the enqueue and the push.
func (w *world) pushQueued(p *push.Pusher) {
	w.t.Helper()
	w.eventually("an empty push queue", func() bool {
		if _, err := p.PushOnce(context.Background()); err != nil {
			w.t.Fatal(err)
		}
		return w.int(`select count(*) from keapsync.push_queue`) == 0
	})
}

// calls counts the sandbox's logged GETs and PATCHes of contact kid.
func (w *world) calls(kid int64) (gets, patches int) {
	suffix := "/contacts/" + strconv.FormatInt(kid, 10)
	for _, r := range w.sb.Requests() {
		if !strings.HasSuffix(r.Path, suffix) {
			continue
		}
		switch r.Method {
		case "GET":
			gets++
		case "PATCH":
			patches++
		}
	}
	return gets, patches
}

// An update goes without the fetch-before-update only when Keap's version of the record is
// known current: applied within KnownFor (the backfill's, then our own PATCH answer's), the local
// change as recent, no hook for it pending, no earlier attempt unrecorded, no list to send, and
// no policy of the account that would let Keap's value win. Each case below breaks one of those
// and must fetch; the first and last must not.
func TestUpdateFetchesFirstUnlessKnownCurrent(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 12)
	cfg := w.config(nil)
	cfg.KnownFor = time.Hour // only what each case changes makes a version unknown
	reg := prometheus.NewRegistry()
	cfg.Registerer = reg
	p := w.pusher(cfg)
	cfg.KnownFor, cfg.Registerer = 0, nil
	never := w.pusher(cfg)
	w.start(p.Consume)
	w.enqueued()
	n, skips := 0, 0
	for _, tc := range []struct {
		name   string
		before string // SQL run after the edit is queued, before the push ($1 the local id, $2 the Keap id)
		edit   string // the local edit ($1 the local id); default a new job title
		by     *push.Pusher
		fetch  bool
	}{
		{name: "known current", fetch: false},
		{name: "stale stamp", before: `update keapsync.sync_state set last_applied_at = now() - interval '2 hours' where local_id = $1 and keap_id = $2`, fetch: true},
		{name: "hook pending", before: `insert into keapsync.webhook_inbox (account_id, event_key, object_type, object_ids, payload)
		    select account_id, 'contact.edit', 'contact', array[$2::bigint], '{}' from keap.contacts where id = $1`, fetch: true},
		{name: "old local change", before: `update keapsync.push_queue set first_enqueued_at = now() - interval '2 hours' where local_id = $1 and $2::bigint > 0`, fetch: true},
		{name: "retry", before: `update keapsync.push_queue set attempts = 1 where local_id = $1 and $2::bigint > 0`, fetch: true},
		{name: "answer unrecorded", before: `update keapsync.push_queue set sent = '{"job_title": "sent before"}' where local_id = $1 and $2::bigint > 0`, fetch: true},
		{name: "list sent", edit: `update keap.contacts set phone = '555-0199' where id = $1`, fetch: true},
		{name: "KnownFor 0", by: never, fetch: true},
		{name: "keap_wins for a field", before: `insert into keapsync.conflict_policies (account_id, object_type, field, policy)
		    select account_id, 'contact', 'family_name', 'keap_wins' from keap.contacts where id = $1 and $2::bigint > 0`, fetch: true},
		{name: "manual by default", before: `delete from keapsync.conflict_policies where $1::bigint > 0 and $2::bigint > 0;
		    insert into keapsync.settings (account_id, default_policy) select account_id, 'manual' from keap.contacts where id = $1 and $2::bigint > 0
		    on conflict (account_id) do update set default_policy = excluded.default_policy`, fetch: true},
		{name: "own PATCH answer", before: `update keapsync.settings set default_policy = 'newest_wins' where $1::bigint > 0 and $2::bigint > 0`, fetch: false},
	} {
		id, kid := w.synced(n)
		if tc.name != "own PATCH answer" {
			n++
		} else {
			// The contact pushed just before, so its stamp is its PATCH answer's, not the backfill's.
			id, kid = w.synced(n - 1)
			w.exec(`update keapsync.sync_state set last_applied_at = now() - interval '2 hours' where local_id = $1`, id)
			w.exec(`update keap.contacts set job_title = 'Pushed once' where id = $1`, id)
			w.enqueued()
			w.pushQueued(p)
		}
		edit := tc.edit
		if edit == "" {
			edit = `update keap.contacts set job_title = 'Case ` + tc.name + `' where id = $1`
		}
		w.exec(edit, id)
		w.enqueued()
		if tc.before != "" {
			for _, stmt := range strings.Split(tc.before, ";") {
				w.exec(stmt, id, kid)
			}
		}
		w.sb.ClearRequests()
		by := p
		if tc.by != nil {
			by = tc.by
		}
		w.pushQueued(by)
		w.exec(`update keapsync.webhook_inbox set processed_at = now() where processed_at is null`)
		gets, patches := w.calls(kid)
		if patches != 1 {
			t.Errorf("%s: %d PATCHes, want 1", tc.name, patches)
		}
		if fetched := gets > 0; fetched != tc.fetch {
			t.Errorf("%s: fetched first: %v, want %v", tc.name, fetched, tc.fetch)
		}
		if !tc.fetch {
			skips++
		}
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counted := -1.0
	for _, f := range families {
		if f.GetName() == "keapsync_push_fetch_skipped_total" {
			counted = f.GetMetric()[0].GetCounter().GetValue()
		}
	}
	if counted != float64(skips) {
		t.Errorf("keapsync_push_fetch_skipped_total = %v, want %d", counted, skips)
	}
}

// A Keap-side edit made after the local one, of the same field, wins under newest_wins; the fetch
// is what shows it before the push. With a hook for the record pending, or the known version
// stale, the update fetches and Keap's value stays in Keap (sent without the fetch, the local
// value would overwrite it).
func TestKeapEditLaterThanLocalSurvivesWhenNotKnownCurrent(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 4)
	cfg := w.config(nil)
	cfg.KnownFor = time.Hour
	p := w.pusher(cfg)
	w.start(p.Consume)
	w.enqueued()
	for i, unknown := range []string{
		`insert into keapsync.webhook_inbox (account_id, event_key, object_type, object_ids, payload)
		    select account_id, 'contact.edit', 'contact', array[$2::bigint], '{}' from keap.contacts where id = $1`,
		`update keapsync.sync_state set last_applied_at = now() - interval '2 hours' where local_id = $1 and keap_id = $2`,
	} {
		id, kid := w.synced(i)
		w.exec(`update keap.contacts set job_title = 'Set here' where id = $1`, id)
		w.enqueued()
		// The local edit an hour back, so Keap's (now) is the newer whatever the clocks' precision.
		w.exec(`update keapsync.sync_state set local_changed_at = jsonb_set(local_changed_at, '{job_title}', to_jsonb(now() - interval '1 hour'))
		    where local_id = $1`, id)
		if err := w.sb.EditContact(kid, map[string]any{"job_title": "Set in Keap later"}); err != nil {
			t.Fatal(err)
		}
		w.exec(unknown, id, kid)
		w.pushQueued(p)
		w.exec(`update keapsync.webhook_inbox set processed_at = now() where processed_at is null`)
		if c := w.contact(kid); c.JobTitle != "Set in Keap later" {
			t.Errorf("case %d: Keap's later edit was overwritten: %q", i, c.JobTitle)
		}
		if n := w.int(`select count(*) from keap.contacts where id = $1 and job_title = 'Set in Keap later'`, id); n != 1 {
			t.Errorf("case %d: Keap's later edit did not win here", i)
		}
	}
}
