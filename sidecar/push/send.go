package push

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

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
	UpdateObjectAt(ctx context.Context, endpoint, path string, body any, updateMask ...string) (*keap.Object, error)
	GetObject(ctx context.Context, path string, id keap.ID, fields ...string) (*keap.Object, error)
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
	// CustomFieldsWrite, for a type read through v1 (notes, orders), is its custom fields'
	// write through v2, apart from the v1 body (see writeCustomFields).
	CustomFieldsWrite *customFieldsWrite `json:"custom_fields_write"`

	// current is Keap's contact as fetched just before this request was read (FetchBeforeUpdate).
	current *keap.Contact
	// known: Keap's version was known current when this request was read (knownCurrent,
	// within KnownFor), so an update naming no list may go without fetching first.
	known bool
	// checked: a listing read Keap's version for this change (preread), so an update naming
	// no list and no tag may go without fetching first.
	checked bool
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

// pushJob is one claimed record on its way to Keap: the queue row, the session that holds its
// claim and lock, and (once the request is read) the account's Keap client. Each step of the
// push is one of its methods, read top to bottom: push and send here (the request, and which
// path carries it), then contact.go (contacts), create.go (creates and the lookups of a marked
// create), objects.go (the v2 types), the delete below, and job.go (what is recorded of the row).
type pushJob struct {
	job
	p    *Pusher
	conn *pgxpool.Conn
	api  Keap
}

// push sends one record to Keap and records the answer. It returns the outcome, or an error:
// a *refusal parks the record, anything else is retried.
func (j *pushJob) push(ctx context.Context) (string, error) {
	if direction, err := syncDirection(ctx, j.conn, j.account, j.objectType); err != nil || direction != "both" {
		if err != nil {
			return "", err
		}
		return j.notSent(ctx, direction)
	}
	known, checked, err := j.knownCurrent(ctx)
	if err != nil {
		return "", err
	}
	req, err := j.request(ctx)
	if err != nil {
		return "", err
	}
	req.known, req.checked = known, checked
	if j.api, err = j.p.cfg.API(ctx, j.account); err != nil {
		return "", fmt.Errorf("push: Keap client of account %s: %w", j.account, err)
	}
	cctx, cancel := context.WithTimeout(keap.WithPriority(ctx, keap.Live), j.p.cfg.CallTimeout)
	defer cancel()
	return j.send(cctx, req, false)
}

// request reads what to send now (keapsync.push_request).
func (j *pushJob) request(ctx context.Context) (*request, error) {
	var raw []byte
	if err := j.conn.QueryRow(ctx, sqlPushRequest, j.account, j.objectType, j.localID).Scan(&raw); err != nil {
		return nil, fmt.Errorf("push: push_request: %w", err)
	}
	var req request
	if err := json.Unmarshal(raw, &req); err != nil {
		return nil, fmt.Errorf("push: push_request answer: %w", err)
	}
	return &req, nil
}

// send carries out a request; refreshed says Keap's current version was applied before it.
func (j *pushJob) send(ctx context.Context, req *request, refreshed bool) (string, error) {
	switch {
	case req.Op == "none":
		if at, marked := j.createMark(); marked {
			return j.undoCreate(ctx, at)
		}
		return OutcomeNone, j.done(ctx, nil, nil, false)
	case req.Op == "unsupported":
		return "", &refusal{keapID: req.KeapID, payload: req.payload(), err: errors.New(req.Reason)}
	case req.Op == "delete":
		return j.pushDelete(ctx, req)
	case j.objectType == "contact":
		return j.pushContact(ctx, req, refreshed)
	case v2Path(j.objectType) != "":
		return j.pushObject(ctx, req)
	case req.Op == "update" && j.objectType == "order" && req.CustomFieldsWrite != nil:
		return j.pushOrderCustomFields(ctx, req)
	case req.Op == "create" && (j.objectType == "tag" || j.objectType == "order"):
		return j.pushCreate(ctx, req)
	}
	return "", &refusal{keapID: req.KeapID, payload: req.payload(),
		err: fmt.Errorf("push: %s of a %s is not something keapsync can send", req.Op, j.objectType)}
}

func (j *pushJob) pushDelete(ctx context.Context, req *request) (string, error) {
	if err := j.deleteInKeap(ctx, req); err != nil {
		return "", err
	}
	return OutcomeDeleted, j.done(ctx, req.Pushed, nil, true)
}

// deleteInKeap deletes the record req names in Keap; gone already is what was wanted.
func (j *pushJob) deleteInKeap(ctx context.Context, req *request) error {
	api := j.api
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

// sqlApplyDelete applies Keap's delete of the record ($2 is its type, $3 its Keap id).
const sqlApplyDelete = `select keapsync.apply_keap_delete($1::uuid, $2, $3)`

// deletedInKeap applies a delete Keap confirmed (a 404 for the record a write was for) and
// finishes the job: Keap's delete wins over a local edit, exactly as when its hook arrives; the
// row stays in the change history. The delete is of the job's own type: Keap's ids are per type,
// so a contact and a company may share one.
func (j *pushJob) deletedInKeap(ctx context.Context, id keap.ID) (string, error) {
	err := pgx.BeginFunc(ctx, j.conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, lockRow[j.objectType], j.localID); err != nil {
			return fmt.Errorf("push: lock row: %w", err)
		}
		if _, err := tx.Exec(ctx, sqlApplyDelete, j.account, j.objectType, int64(id)); err != nil {
			return fmt.Errorf("push: apply Keap's delete: %w", err)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return OutcomeKeapDeleted, j.done(ctx, nil, nil, false)
}
