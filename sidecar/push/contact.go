package push

// A contact's push: create or update (after applying Keap's current version), then its tags, then
// the answer mark_pushed records. Keap's delete of the contact, met on the way, wins.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keapsync/keapsync/sidecar/keap"
)

// pushContact creates or updates a contact, then applies and removes tags. A create is recorded
// on its own first, so the Keap id is written back before anything else can fail.
func (j *pushJob) pushContact(ctx context.Context, req *request, refreshed bool) (string, error) {
	api := j.api
	var answer *keap.Contact
	var err error
	outcome := OutcomeUpdated
	pushed := req.Pushed
	switch {
	case req.Op == "create":
		outcome = OutcomeCreated
		if answer, err = j.createContact(ctx, req); err != nil {
			return "", err
		}
		contactPart, tagPart := splitTags(req.Pushed)
		if err := j.markCreated(ctx, contactPart, answer.Raw); err != nil {
			return "", err
		}
		pushed = tagPart
	case len(req.UpdateMask) > 0:
		if j.p.cfg.FetchBeforeUpdate && !refreshed {
			// A list is sent whole: always completed from a version fetched just before. Tags
			// are read first when a listing stood in for the fetch: v1 lists contacts without
			// tag_ids (its list schema has none), and a tag change may keep last_updated.
			if !hasFieldLists(req.Body) && (req.known || (req.checked && len(req.TagsAdd)+len(req.TagsRemove) == 0)) {
				j.p.metrics.fetchSkips.Inc()
				break
			}
			fresh, err := j.refresh(ctx, req)
			if errors.Is(err, errDeletedInKeap) {
				return j.deletedInKeap(ctx, req.keapID())
			}
			if err != nil {
				return "", err
			}
			return j.send(ctx, fresh, true)
		}
	}
	if err := j.noteSent(ctx, pushed); err != nil {
		return "", err
	}
	if req.Op != "create" && len(req.UpdateMask) > 0 {
		body, err := j.updateBody(ctx, req)
		if errors.Is(err, errDeletedInKeap) {
			return j.deletedInKeap(ctx, req.keapID())
		}
		if err != nil {
			return "", err
		}
		if answer, err = api.UpdateContact(ctx, req.keapID(), body, req.UpdateMask...); err != nil {
			// Sent without the fetch, the PATCH is the first to meet a delete made in Keap.
			if errors.Is(err, keap.ErrNotFound) && goneFromKeap(ctx, api, req.keapID()) {
				return j.deletedInKeap(ctx, req.keapID())
			}
			return "", refused(err, req)
		}
		if answer, err = j.clearIgnored(ctx, req, answer); err != nil {
			return "", err
		}
	}
	id := req.keapID()
	if answer != nil {
		id = answer.ID
	}
	if len(req.TagsAdd) > 0 {
		res, err := api.ApplyTags(ctx, id, req.TagsAdd...)
		// Tags for a contact someone may have deleted in Keap: Keap's delete wins, as on the
		// update path.
		if errors.Is(err, keap.ErrNotFound) && req.Op != "create" && goneFromKeap(ctx, api, id) {
			return j.deletedInKeap(ctx, id)
		}
		if err != nil {
			return "", refused(err, req)
		}
		if failed := res.Failed(); len(failed) > 0 {
			return "", &refusal{status: 400, keapID: req.KeapID, payload: req.payload(), err: fmt.Errorf("keap refused tags %v", failed)}
		}
	}
	if len(req.TagsRemove) > 0 {
		if err := api.RemoveTags(ctx, id, req.TagsRemove...); err != nil && !errors.Is(err, keap.ErrNotFound) {
			return "", refused(err, req)
		}
	}
	raw, err := j.contactAnswer(ctx, id, answer)
	if err != nil {
		return "", err
	}
	return outcome, j.done(ctx, pushed, raw, true)
}

// contactAnswer is the Keap object mark_pushed applies after the push. The answer to a PATCH or
// a create predates the tag calls that followed it, so its tag list is left out (unknown, not
// "no tags"). With only tags sent there is no answer: the stored object stands in, and being
// the version already applied, the apply is a no-op after the pushed values become agreed.
func (j *pushJob) contactAnswer(ctx context.Context, id keap.ID, answer *keap.Contact) (json.RawMessage, error) {
	if answer == nil {
		var stored json.RawMessage
		if err := j.conn.QueryRow(ctx, sqlKeapObject, j.localID).Scan(&stored); err != nil {
			return nil, fmt.Errorf("push: stored Keap object: %w", err)
		}
		if stored != nil {
			return stored, nil
		}
		c, err := j.api.GetContact(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("push: fetch contact %d: %w", id, err)
		}
		answer = c
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(answer.Raw, &obj); err != nil {
		return nil, fmt.Errorf("push: Keap's answer: %w", err)
	}
	delete(obj, "tag_ids")
	return json.Marshal(obj)
}

// splitTags splits pushed {field: value} into contact fields and tag keys ("tag.<id>").
func splitTags(pushed json.RawMessage) (json.RawMessage, json.RawMessage) {
	var all map[string]json.RawMessage
	if json.Unmarshal(pushed, &all) != nil {
		return pushed, nil
	}
	tags := maps.Clone(all)
	maps.DeleteFunc(all, func(k string, _ json.RawMessage) bool { return strings.HasPrefix(k, "tag.") })
	maps.DeleteFunc(tags, func(k string, _ json.RawMessage) bool { return !strings.HasPrefix(k, "tag.") })
	a, _ := json.Marshal(all)
	t, _ := json.Marshal(tags)
	return a, t
}

const (
	sqlApply = `select keapsync.apply_keap_record($1::uuid, 'contact', $2::jsonb)`
	// The database's time, taken before a read whose answer is applied (keapsync.set_asked_at).
	sqlNow = `select clock_timestamp()`
)

// goneFromKeap says whether a read confirms Keap's 404 for a write to contact id: a write's 404
// is taken for a delete only when a read agrees.
func goneFromKeap(ctx context.Context, api Keap, id keap.ID) bool {
	_, err := api.GetContact(ctx, id)
	return errors.Is(err, keap.ErrNotFound)
}

// errDeletedInKeap: Keap answered 404 for the contact an update was for.
var errDeletedInKeap = errors.New("push: deleted in Keap")

// sqlKnownCurrent answers two questions about a contact update's fetch-before-update, for a
// record with a Keap id and no inbox delivery naming it waiting (a hook says Keap changed the
// record after what we hold; any pending row counts, whatever its type, as a tag hook's ids may
// be contacts'):
//
//   - known (KnownFor, $4): a version of the record from Keap was applied within the interval (a
//     fetch for a hook or an earlier update, a listing, or the answer to our own PATCH:
//     keapsync.apply_keap_record stamps last_applied_at whenever it applies a version newer
//     than, or different from, the stored one); the queued local change is as recent; and no
//     policy of the account lets Keap's value of a contact field win (keap_wins) or wait for a
//     person (manual).
//   - checked: a listing read Keap's version for the queued change (preread), after its last
//     enqueue and within checkedFor ($5): that read was this update's fetch.
const sqlKnownCurrent = `
select coalesce(bool_or(s.last_applied_at > now() - $4::interval and q.first_enqueued_at > now() - $4::interval
                        and not exists (select 1 from keapsync.conflict_policies c
                                         where c.account_id = s.account_id and c.object_type = s.object_type
                                           and c.policy in ('keap_wins', 'manual'))
                        and not exists (select 1 from keapsync.settings g
                                         where g.account_id = s.account_id and g.default_policy in ('keap_wins', 'manual'))), false),
       coalesce(bool_or(q.keap_checked_at > q.last_enqueued_at and q.keap_checked_at > now() - $5::interval), false)
  from keapsync.sync_state s
  join keapsync.push_queue q on q.account_id = s.account_id and q.object_type = s.object_type and q.local_id = s.local_id
 where s.account_id = $1::uuid and s.object_type = $2 and s.local_id = $3 and s.keap_id is not null
   and not exists (select 1 from keapsync.webhook_inbox i
                    where i.account_id = s.account_id and i.processed_at is null
                      and s.keap_id = any (i.object_ids))`

// knownCurrent says whether a contact update may go without the fetch-before-update, and why:
// known (sqlKnownCurrent within KnownFor, an opt-in) or checked (a listing read the contact for
// this change: preread). Either needs no earlier attempt for the record that may have reached
// Keap unrecorded (a retry, or a push whose answer is not recorded). It is asked before the
// request is read, so a version applied meanwhile is merged into the request.
//
// checked gives up nothing the fetch does not: the listing returned Keap's version after the
// local change was queued, and it was applied as the fetch's would be; a Keap edit after the
// listing and before the PATCH is overwritten, as one after the fetch is, and the listing is at
// most checkedFor older than the PATCH instead of one round trip.
//
// known, on the other hand, rests on a version that may predate the local edit. The skip cannot
// change the outcome for a field it does not send (update_mask leaves it alone, and the PATCH
// answer brings it in through the merge), nor under local_wins. Under newest_wins it loses only
// a Keap edit of a sent field made after the local edit, within KnownFor before the push, and
// not yet reported by a hook: the race the fetch leaves open for one Keap round trip, widened to
// at most KnownFor. Under keap_wins and manual it would lose such an edit made at any time since
// the known version, so those accounts always fetch; so does an update sending a field-keyed
// list, which is sent whole.
func (j *pushJob) knownCurrent(ctx context.Context) (known, checked bool, err error) {
	if !j.p.cfg.FetchBeforeUpdate || j.objectType != "contact" ||
		j.attempts > 0 || len(j.sent) > 0 || j.createSentAt != nil {
		return false, false, nil
	}
	if err := j.conn.QueryRow(ctx, sqlKnownCurrent, j.account, j.objectType, j.localID, j.p.cfg.KnownFor.String(),
		checkedFor.String()).Scan(&known, &checked); err != nil {
		return false, false, fmt.Errorf("push: is Keap's version known current: %w", err)
	}
	return known && j.p.cfg.KnownFor > 0, checked, nil
}

// refresh applies Keap's current version of a contact before an update goes out, so a field
// someone changed in Keap since the agreed state is settled by the conflict policy in SQL
// rather than overwritten, then reads the request again.
func (j *pushJob) refresh(ctx context.Context, req *request) (*request, error) {
	var asked time.Time
	if err := j.conn.QueryRow(ctx, sqlNow).Scan(&asked); err != nil {
		return nil, fmt.Errorf("push: the database's time: %w", err)
	}
	c, err := j.api.GetContact(ctx, req.keapID(), keap.SyncProperties...)
	if errors.Is(err, keap.ErrNotFound) {
		return nil, errDeletedInKeap
	}
	if err != nil {
		return nil, refused(err, req)
	}
	err = pgx.BeginFunc(ctx, j.conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, lockRow["contact"], j.localID); err != nil {
			return fmt.Errorf("push: lock row: %w", err)
		}
		if _, err := tx.Exec(ctx, sqlAskedAt, asked); err != nil {
			return fmt.Errorf("push: note when Keap's version was asked for: %w", err)
		}
		if _, err := tx.Exec(ctx, sqlApply, j.account, c.Raw); err != nil {
			return fmt.Errorf("push: apply Keap's version: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	fresh, err := j.request(ctx)
	if err != nil {
		return nil, err
	}
	fresh.current = c
	return fresh, nil
}

// clearIgnored makes the clears of req hold whether Keap applies a null or ignores it: a
// property sent as null that Keap's answer still holds is sent again as "" (one more call, only
// where Keap ignores nulls).
func (j *pushJob) clearIgnored(ctx context.Context, req *request, answer *keap.Contact) (*keap.Contact, error) {
	cleared := clearedStrings(req.Body)
	if len(cleared) == 0 || answer == nil {
		return answer, nil
	}
	if again := stillSet(answer.Raw, cleared); len(again) > 0 {
		body := make(map[string]string, len(again))
		for _, k := range again {
			body[k] = ""
		}
		next, err := j.api.UpdateContact(ctx, req.keapID(), body, again...)
		if err != nil {
			return nil, refused(err, req)
		}
		answer = next
	}
	raw, err := withoutEmpty(answer.Raw, cleared)
	if err != nil {
		return nil, err
	}
	out := *answer
	out.Raw = raw
	return &out, nil
}

// updateBody is the PATCH body for req: lists completed from Keap's current contact (fetched
// now unless the refresh just did), so no column we do not model is lost (see lists.go).
func (j *pushJob) updateBody(ctx context.Context, req *request) (json.RawMessage, error) {
	var current json.RawMessage
	if hasFieldLists(req.Body) {
		c := req.current
		if c == nil {
			fetched, err := j.api.GetContact(ctx, req.keapID())
			if errors.Is(err, keap.ErrNotFound) {
				return nil, errDeletedInKeap
			}
			if err != nil {
				return nil, refused(err, req)
			}
			c = fetched
		}
		current = c.Raw
	}
	return updateBody(req.Body, current)
}
