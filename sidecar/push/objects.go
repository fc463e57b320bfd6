package push

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/keapsync/keapsync/sidecar/keap"
	"github.com/keapsync/keapsync/sidecar/objecttype"
)

// v2Path is the v2 collection a registry type is written through, "" for types with code of
// their own (contacts, tags, orders).
func v2Path(objectType string) string {
	if t, ok := objecttype.ByName(objectType); ok && t.V2 != nil {
		return t.V2.Path
	}
	return ""
}

// pushObject creates or updates a registry v2 type (push_request built the body and mask from
// the type's keap_paths) and records Keap's answer. A create whose answer was lost is not looked
// for before it is sent again: v2 has no stamp to find it by, so a crash at that instant can
// leave a duplicate in Keap (its hook then imports it).
func (j *pushJob) pushObject(ctx context.Context, req *request) (string, error) {
	api := j.api
	path := v2Path(j.objectType)
	var answer *keap.Object
	var err error
	outcome := OutcomeUpdated
	switch req.Op {
	case "create":
		outcome = OutcomeCreated
		answer, err = api.CreateObject(ctx, path, req.Body)
	default:
		if len(req.UpdateMask) == 0 && req.CustomFieldsWrite == nil {
			return OutcomeNone, j.done(ctx, req.Pushed, nil, false)
		}
		if err := j.noteSent(ctx, req.Pushed); err != nil {
			return "", err
		}
		var custom json.RawMessage
		if custom, err = j.writeCustomFields(ctx, req); err == nil {
			if len(req.UpdateMask) > 0 {
				answer, err = api.UpdateObject(ctx, path, req.keapID(), req.Body, req.UpdateMask...)
			} else {
				answer, err = api.GetObject(ctx, path, req.keapID()) // the version to record
			}
		}
		if errors.Is(err, keap.ErrNotFound) {
			return j.deletedInKeap(ctx, req.keapID())
		}
		if err == nil {
			answer.Raw = withCustomFields(answer.Raw, custom)
		}
	}
	if err != nil {
		return "", refused(err, req)
	}
	return outcome, j.done(ctx, req.Pushed, answer.Raw, true)
}

// customFieldsWrite is push_request's v2 write of a v1 type's custom fields: the body (with
// update_mask=custom_fields) and, for a path under its parent, the parent's Keap id.
type customFieldsWrite struct {
	ParentID *int64          `json:"parent_id"`
	Body     json.RawMessage `json:"body"`
}

// writeCustomFields sends a request's custom fields through the type's v2 update
// (objecttype.CustomFieldsV2.Patch) and returns them as Keap's answer lists them; nil when the
// request has none. It goes before the v1 write or read whose answer is recorded, so that answer
// is as new as the custom fields or newer.
func (j *pushJob) writeCustomFields(ctx context.Context, req *request) (json.RawMessage, error) {
	w := req.CustomFieldsWrite
	t, _ := objecttype.ByName(j.objectType)
	if w == nil || t.CustomFields == nil {
		return nil, nil
	}
	path := strings.ReplaceAll(t.CustomFields.Patch, "{id}", strconv.FormatInt(int64(req.keapID()), 10))
	if strings.Contains(path, "{parent_id}") {
		if w.ParentID == nil {
			return nil, &refusal{keapID: req.KeapID, payload: req.payload(),
				err: fmt.Errorf("Keap's v2 writes a %s's custom fields under its parent, and this one names none", j.objectType)}
		}
		path = strings.ReplaceAll(path, "{parent_id}", strconv.FormatInt(*w.ParentID, 10))
	}
	answer, err := j.api.UpdateObjectAt(ctx, t.CustomFields.Patch, path, w.Body, "custom_fields")
	if err != nil {
		return nil, err
	}
	var v struct {
		CustomFields json.RawMessage `json:"custom_fields"`
	}
	if err := json.Unmarshal(answer.Raw, &v); err != nil || len(v.CustomFields) == 0 {
		return nil, nil // an answer without the list: the record keeps what was sent as agreed
	}
	return v.CustomFields, nil
}

// pushOrderCustomFields writes an order's custom fields, the one change of an order Keap's API
// takes (v1 has no order update; push_request refuses the others), and records the order as v1
// reads it after, with them.
func (j *pushJob) pushOrderCustomFields(ctx context.Context, req *request) (string, error) {
	if err := j.noteSent(ctx, req.Pushed); err != nil {
		return "", err
	}
	custom, err := j.writeCustomFields(ctx, req)
	var order *keap.Order
	if err == nil {
		order, err = j.api.GetOrder(ctx, req.keapID())
	}
	if errors.Is(err, keap.ErrNotFound) {
		return j.deletedInKeap(ctx, req.keapID())
	}
	if err != nil {
		return "", refused(err, req)
	}
	return OutcomeUpdated, j.done(ctx, req.Pushed, withCustomFields(order.Raw, custom), true)
}

// withCustomFields is a v1 object with v2's custom_fields list added (none: as it is).
func withCustomFields(raw, custom json.RawMessage) json.RawMessage {
	if len(custom) == 0 {
		return raw
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return raw // not an object: mark_pushed judges it as it is
	}
	obj["custom_fields"] = custom
	out, err := json.Marshal(obj)
	if err != nil {
		return raw
	}
	return out
}
