package push

import (
	"context"
	"errors"

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
		if len(req.UpdateMask) == 0 {
			return OutcomeNone, j.done(ctx, req.Pushed, nil, false)
		}
		if err := j.noteSent(ctx, req.Pushed); err != nil {
			return "", err
		}
		answer, err = api.UpdateObject(ctx, path, req.keapID(), req.Body, req.UpdateMask...)
		if errors.Is(err, keap.ErrNotFound) {
			return j.deletedInKeap(ctx, req.keapID())
		}
	}
	if err != nil {
		return "", refused(err, req)
	}
	return outcome, j.done(ctx, req.Pushed, answer.Raw, true)
}
