package push

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keapsync/keapsync/sidecar/keap"
)

// Keap is what the push path needs of a Keap client (*keap.Client has it).
type Keap interface {
	UpsertContact(ctx context.Context, duplicateOption string, body any) (*keap.Contact, error)
	CreateContact(ctx context.Context, body any) (*keap.Contact, error)
	UpdateContact(ctx context.Context, id keap.ID, body any, updateMask ...string) (*keap.Contact, error)
	DeleteContact(ctx context.Context, id keap.ID) error
	GetContact(ctx context.Context, id keap.ID, optional ...string) (*keap.Contact, error)
	ListContacts(ctx context.Context, q keap.ContactQuery) (*keap.Page[keap.Contact], error)
	ApplyTags(ctx context.Context, contactID keap.ID, tagIDs ...keap.ID) (keap.TagResults, error)
	RemoveTags(ctx context.Context, contactID keap.ID, tagIDs ...keap.ID) error
	CreateTag(ctx context.Context, in keap.TagInput) (*keap.Tag, error)
	ListTags(ctx context.Context, q keap.TagQuery) (*keap.Page[keap.Tag], error)
	CreateOrder(ctx context.Context, in keap.OrderInput) (*keap.Order, error)
	GetOrder(ctx context.Context, id keap.ID) (*keap.Order, error)
	ListOrders(ctx context.Context, q keap.OrderQuery) (*keap.Page[keap.Order], error)
	DeleteOrder(ctx context.Context, id keap.ID) error
	CreateObject(ctx context.Context, path string, body any) (*keap.Object, error)
	UpdateObject(ctx context.Context, path string, id keap.ID, body any, updateMask ...string) (*keap.Object, error)
	DeleteObject(ctx context.Context, path string, id keap.ID) error
}

var _ Keap = (*keap.Client)(nil)

// request is keapsync.push_request's answer: what to send, decided in SQL.
type request struct {
	Op         string          `json:"op"`
	KeapID     *int64          `json:"keap_id"`
	Body       json.RawMessage `json:"body"`
	UpdateMask []string        `json:"update_mask"`
	TagsAdd    []keap.ID       `json:"tags_add"`
	TagsRemove []keap.ID       `json:"tags_remove"`
	Email      *string         `json:"email"`
	Pushed     json.RawMessage `json:"pushed"`
	Reason     string          `json:"reason"`

	// current is Keap's contact as fetched just before this request was read (FetchBeforeUpdate).
	current *keap.Contact
	// known: Keap's version was known current when this request was read (knownCurrent), so
	// an update naming no list may go without fetching first.
	known bool
}

func (r *request) payload() json.RawMessage {
	b, _ := json.Marshal(r)
	return b
}

func (r *request) keapID() keap.ID {
	if r.KeapID == nil {
		return 0
	}
	return keap.ID(*r.KeapID)
}

// push sends one record to Keap and records the answer. It returns the outcome, or an error:
// a *refusal parks the record, anything else is retried.
func (p *Pusher) push(ctx context.Context, conn *pgxpool.Conn, j *job) (string, error) {
	if both, err := sendsToKeap(ctx, conn, j); err != nil || !both {
		if err != nil {
			return "", err
		}
		p.log.Info("not pushed: the type syncs from Keap only (or not at all) for this account", "record", j.String())
		return OutcomeNone, p.done(ctx, conn, *j, nil, nil, false)
	}
	known, err := p.knownCurrent(ctx, conn, j)
	if err != nil {
		return "", err
	}
	var raw []byte
	if err := conn.QueryRow(ctx, sqlPushRequest, j.account, j.objectType, j.localID).Scan(&raw); err != nil {
		return "", fmt.Errorf("push: push_request: %w", err)
	}
	var req request
	if err := json.Unmarshal(raw, &req); err != nil {
		return "", fmt.Errorf("push: push_request answer: %w", err)
	}
	req.known = known
	api, err := p.cfg.API(ctx, j.account)
	if err != nil {
		return "", fmt.Errorf("push: Keap client of account %s: %w", j.account, err)
	}
	cctx, cancel := context.WithTimeout(keap.WithPriority(ctx, keap.Live), p.cfg.CallTimeout)
	defer cancel()
	return p.send(cctx, conn, api, j, &req, false)
}

// send carries out a request; refreshed says Keap's current version was applied before it.
func (p *Pusher) send(ctx context.Context, conn *pgxpool.Conn, api Keap, j *job, req *request, refreshed bool) (string, error) {
	switch {
	case req.Op == "none":
		if at, marked := j.createMark(); marked {
			return p.undoCreate(ctx, conn, api, j, at)
		}
		return OutcomeNone, p.done(ctx, conn, *j, nil, nil, false)
	case req.Op == "unsupported":
		return "", &refusal{keapID: req.KeapID, payload: req.payload(), err: errors.New(req.Reason)}
	case req.Op == "delete":
		return p.pushDelete(ctx, conn, api, j, req)
	case j.objectType == "contact":
		return p.pushContact(ctx, conn, api, j, req, refreshed)
	case v2Path(j.objectType) != "":
		return p.pushObject(ctx, conn, api, j, req)
	case req.Op == "create" && (j.objectType == "tag" || j.objectType == "order"):
		return p.pushCreate(ctx, conn, api, j, req)
	}
	return "", &refusal{keapID: req.KeapID, payload: req.payload(),
		err: fmt.Errorf("push: %s of a %s is not something keapsync can send", req.Op, j.objectType)}
}

func (p *Pusher) pushDelete(ctx context.Context, conn *pgxpool.Conn, api Keap, j *job, req *request) (string, error) {
	if err := deleteInKeap(ctx, api, j, req); err != nil {
		return "", err
	}
	return OutcomeDeleted, p.done(ctx, conn, *j, req.Pushed, nil, true)
}

// deleteInKeap deletes the record req names in Keap; gone already is what was wanted.
func deleteInKeap(ctx context.Context, api Keap, j *job, req *request) error {
	var err error
	switch j.objectType {
	case "contact":
		err = api.DeleteContact(ctx, req.keapID())
	case "order":
		err = api.DeleteOrder(ctx, req.keapID())
	default:
		if path := v2Path(j.objectType); path != "" {
			err = api.DeleteObject(ctx, path, req.keapID())
			break
		}
		return &refusal{keapID: req.KeapID, payload: req.payload(), err: fmt.Errorf("Keap's API cannot delete a %s", j.objectType)}
	}
	if err != nil && !errors.Is(err, keap.ErrNotFound) {
		return refused(err, req)
	}
	return nil
}

// pushContact creates or updates a contact, then applies and removes tags. A create is recorded
// on its own first, so the Keap id is written back before anything else can fail.
func (p *Pusher) pushContact(ctx context.Context, conn *pgxpool.Conn, api Keap, j *job, req *request, refreshed bool) (string, error) {
	var answer *keap.Contact
	var err error
	outcome := OutcomeUpdated
	pushed := req.Pushed
	switch {
	case req.Op == "create":
		outcome = OutcomeCreated
		if answer, err = p.createContact(ctx, conn, api, j, req); err != nil {
			return "", err
		}
		contactPart, tagPart := splitTags(req.Pushed)
		if err := p.markCreated(ctx, conn, *j, contactPart, answer.Raw); err != nil {
			return "", err
		}
		pushed = tagPart
	case len(req.UpdateMask) > 0:
		if p.cfg.FetchBeforeUpdate && !refreshed {
			// A list is sent whole: always completed from a version fetched just before.
			if req.known && !hasFieldLists(req.Body) {
				p.metrics.fetchSkips.Inc()
				break
			}
			fresh, err := p.refresh(ctx, conn, api, j, req)
			if errors.Is(err, errDeletedInKeap) {
				return p.deletedInKeap(ctx, conn, j, req.keapID())
			}
			if err != nil {
				return "", err
			}
			return p.send(ctx, conn, api, j, fresh, true)
		}
	}
	if err := p.noteSent(ctx, conn, j, pushed); err != nil {
		return "", err
	}
	if req.Op != "create" && len(req.UpdateMask) > 0 {
		body, err := p.updateBody(ctx, api, req)
		if errors.Is(err, errDeletedInKeap) {
			return p.deletedInKeap(ctx, conn, j, req.keapID())
		}
		if err != nil {
			return "", err
		}
		if answer, err = api.UpdateContact(ctx, req.keapID(), body, req.UpdateMask...); err != nil {
			// Sent without the fetch, the PATCH is the first to meet a delete made in Keap.
			if errors.Is(err, keap.ErrNotFound) && goneFromKeap(ctx, api, req.keapID()) {
				return p.deletedInKeap(ctx, conn, j, req.keapID())
			}
			return "", refused(err, req)
		}
		if answer, err = clearIgnored(ctx, api, req, answer); err != nil {
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
			return p.deletedInKeap(ctx, conn, j, id)
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
	raw, err := p.contactAnswer(ctx, conn, api, j, id, answer)
	if err != nil {
		return "", err
	}
	return outcome, p.done(ctx, conn, *j, pushed, raw, true)
}

// contactAnswer is the Keap object mark_pushed applies after the push. The answer to a PATCH or
// a create predates the tag calls that followed it, so its tag list is left out (unknown, not
// "no tags"). With only tags sent there is no answer: the stored object stands in, and being
// the version already applied, the apply is a no-op after the pushed values become agreed.
func (p *Pusher) contactAnswer(ctx context.Context, conn *pgxpool.Conn, api Keap, j *job, id keap.ID, answer *keap.Contact) (json.RawMessage, error) {
	if answer == nil {
		var stored json.RawMessage
		if err := conn.QueryRow(ctx, sqlKeapObject, j.localID).Scan(&stored); err != nil {
			return nil, fmt.Errorf("push: stored Keap object: %w", err)
		}
		if stored != nil {
			return stored, nil
		}
		c, err := api.GetContact(ctx, id)
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
	sqlApply       = `select keapsync.apply_keap_record($1::uuid, 'contact', $2::jsonb)`
	sqlApplyDelete = `select keapsync.apply_keap_delete($1::uuid, 'contact', $2)`
)

// goneFromKeap says whether a read confirms Keap's 404 for a write to contact id: a write's 404
// is taken for a delete only when a read agrees.
func goneFromKeap(ctx context.Context, api Keap, id keap.ID) bool {
	_, err := api.GetContact(ctx, id)
	return errors.Is(err, keap.ErrNotFound)
}

// errDeletedInKeap: Keap answered 404 for the contact an update was for.
var errDeletedInKeap = errors.New("push: deleted in Keap")

// deletedInKeap applies a delete Keap confirmed (a 404 for the contact) and finishes the job:
// Keap's delete wins over a local edit, exactly as when its hook arrives; the row stays in the
// change history.
func (p *Pusher) deletedInKeap(ctx context.Context, conn *pgxpool.Conn, j *job, id keap.ID) (string, error) {
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, lockRow["contact"], j.localID); err != nil {
			return fmt.Errorf("push: lock row: %w", err)
		}
		if _, err := tx.Exec(ctx, sqlApplyDelete, j.account, int64(id)); err != nil {
			return fmt.Errorf("push: apply Keap's delete: %w", err)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return OutcomeKeapDeleted, p.done(ctx, conn, *j, nil, nil, false)
}

// sqlKnownCurrent: a version of the record from Keap was applied within the interval (a fetch
// for a hook or an earlier update, a listing, or the answer to our own PATCH:
// keapsync.apply_keap_record stamps last_applied_at whenever it applies a version newer than,
// or different from, the stored one); the queued local change is as recent; no inbox delivery
// naming the Keap id waits (a hook says Keap changed the record after what we hold; any pending
// row counts, whatever its type, as a tag hook's ids may be contacts'); and no policy of the
// account lets Keap's value of a contact field win (keap_wins) or wait for a person (manual).
const sqlKnownCurrent = `
select exists (
  select 1 from keapsync.sync_state s
    join keapsync.push_queue q on q.account_id = s.account_id and q.object_type = s.object_type and q.local_id = s.local_id
   where s.account_id = $1::uuid and s.object_type = $2 and s.local_id = $3 and s.keap_id is not null
     and s.last_applied_at > now() - $4::interval and q.first_enqueued_at > now() - $4::interval
     and not exists (select 1 from keapsync.webhook_inbox i
                      where i.account_id = s.account_id and i.processed_at is null
                        and s.keap_id = any (i.object_ids))
     and not exists (select 1 from keapsync.conflict_policies c
                      where c.account_id = s.account_id and c.object_type = s.object_type
                        and c.policy in ('keap_wins', 'manual'))
     and not exists (select 1 from keapsync.settings g
                      where g.account_id = s.account_id and g.default_policy in ('keap_wins', 'manual')))`

// knownCurrent says whether a contact update may go without the fetch-before-update
// (sqlKnownCurrent within KnownFor, and no earlier attempt for the record that may have reached
// Keap unrecorded: a retry, or a push whose answer is not recorded). It is asked before the
// request is read, so a version applied meanwhile is merged into the request.
//
// What the fetch would add is a Keap-side edit that no applied version shows yet. The skip
// cannot change the outcome for a field it does not send (update_mask leaves it alone, and the
// PATCH answer brings it in through the merge), nor under local_wins. Under newest_wins it
// loses only a Keap edit of a sent field made after the local edit, within KnownFor before the
// push, and not yet reported by a hook: the race the fetch leaves open for one Keap round trip,
// widened to at most KnownFor. Under keap_wins and manual it would lose such an edit made at
// any time since the known version, so those accounts always fetch; so does an update sending a
// field-keyed list, which is sent whole.
func (p *Pusher) knownCurrent(ctx context.Context, conn *pgxpool.Conn, j *job) (bool, error) {
	if !p.cfg.FetchBeforeUpdate || p.cfg.KnownFor <= 0 || j.objectType != "contact" ||
		j.attempts > 0 || len(j.sent) > 0 || j.createSentAt != nil {
		return false, nil
	}
	var known bool
	if err := conn.QueryRow(ctx, sqlKnownCurrent, j.account, j.objectType, j.localID, p.cfg.KnownFor.String()).Scan(&known); err != nil {
		return false, fmt.Errorf("push: is Keap's version known current: %w", err)
	}
	return known, nil
}

// refresh applies Keap's current version of a contact before an update goes out, so a field
// someone changed in Keap since the agreed state is settled by the conflict policy in SQL
// rather than overwritten, then reads the request again.
func (p *Pusher) refresh(ctx context.Context, conn *pgxpool.Conn, api Keap, j *job, req *request) (*request, error) {
	c, err := api.GetContact(ctx, req.keapID(), keap.SyncProperties...)
	if errors.Is(err, keap.ErrNotFound) {
		return nil, errDeletedInKeap
	}
	if err != nil {
		return nil, refused(err, req)
	}
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, lockRow["contact"], j.localID); err != nil {
			return fmt.Errorf("push: lock row: %w", err)
		}
		if _, err := tx.Exec(ctx, sqlApply, j.account, c.Raw); err != nil {
			return fmt.Errorf("push: apply Keap's version: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var raw []byte
	if err := conn.QueryRow(ctx, sqlPushRequest, j.account, j.objectType, j.localID).Scan(&raw); err != nil {
		return nil, fmt.Errorf("push: push_request: %w", err)
	}
	var fresh request
	if err := json.Unmarshal(raw, &fresh); err != nil {
		return nil, fmt.Errorf("push: push_request answer: %w", err)
	}
	fresh.current = c
	return &fresh, nil
}

// clearIgnored makes the clears of req hold whether Keap applies a null or ignores it: a
// property sent as null that Keap's answer still holds is sent again as "" (one more call, only
// where Keap ignores nulls).
func clearIgnored(ctx context.Context, api Keap, req *request, answer *keap.Contact) (*keap.Contact, error) {
	cleared := clearedStrings(req.Body)
	if len(cleared) == 0 || answer == nil {
		return answer, nil
	}
	if again := stillSet(answer.Raw, cleared); len(again) > 0 {
		body := make(map[string]string, len(again))
		for _, k := range again {
			body[k] = ""
		}
		next, err := api.UpdateContact(ctx, req.keapID(), body, again...)
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
func (p *Pusher) updateBody(ctx context.Context, api Keap, req *request) (json.RawMessage, error) {
	var current json.RawMessage
	if hasFieldLists(req.Body) {
		c := req.current
		if c == nil {
			fetched, err := api.GetContact(ctx, req.keapID())
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
