package push

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5/pgxpool"

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
func (p *Pusher) pushObject(ctx context.Context, conn *pgxpool.Conn, api Keap, j *job, req *request) (string, error) {
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
			return OutcomeNone, p.done(ctx, conn, *j, req.Pushed, nil, false)
		}
		if err := p.noteSent(ctx, conn, j, req.Pushed); err != nil {
			return "", err
		}
		answer, err = api.UpdateObject(ctx, path, req.keapID(), req.Body, req.UpdateMask...)
		if errors.Is(err, keap.ErrNotFound) {
			return p.deletedInKeap(ctx, conn, j, req.keapID())
		}
	}
	if err != nil {
		return "", refused(err, req)
	}
	return outcome, p.done(ctx, conn, *j, req.Pushed, answer.Raw, true)
}
