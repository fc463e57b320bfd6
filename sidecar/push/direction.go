package push

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
)

// sqlDirection is the account's sync direction for the type (keapsync.sync_directions).
const sqlDirection = `select coalesce((select direction from keapsync.sync_directions where account_id = $1 and object_type = $2), 'both')`

// syncDirection is the type's sync direction for the account: both, keap_to_postgres or off.
// Local writes to a type that is not both are refused by the database; push covers what was
// queued before the switch (notSent).
func syncDirection(ctx context.Context, conn *pgxpool.Conn, account, objectType string) (string, error) {
	var d string
	if err := conn.QueryRow(ctx, sqlDirection, account, objectType).Scan(&d); err != nil {
		return "", fmt.Errorf("push: sync direction: %w", err)
	}
	return d, nil
}

// notSent parks a change made here while its type synced both ways and found queued once the
// account no longer sends the type to Keap. Dropping it would leave the row differing from Keap
// with nobody told, which is why the database refuses such writes from the switch on; the dead
// letter says why and how to send it after all. A change with nothing left to send is done.
func (j *pushJob) notSent(ctx context.Context, direction string) (string, error) {
	req, err := j.request(ctx)
	if err != nil {
		return "", err
	}
	if req.Op == "none" {
		return OutcomeNone, j.done(ctx, nil, nil, false)
	}
	return "", &refusal{keapID: req.KeapID, payload: req.payload(), err: fmt.Errorf(
		"not sent: this %s was changed here while it synced both ways, and the account now syncs the type %s; "+
			"to send it, set keapsync.sync_directions back to 'both' and retry this dead letter, or discard it",
		j.objectType, direction)}
}
