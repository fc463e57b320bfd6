package push

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
)

// sqlDirection is the account's sync direction for the type (keapsync.sync_directions).
const sqlDirection = `select coalesce((select direction from keapsync.sync_directions where account_id = $1 and object_type = $2), 'both')`

// sendsToKeap says whether the record's type syncs both ways for its account. Local writes to a
// type that does not are refused by the database; this covers what was queued before the switch.
func sendsToKeap(ctx context.Context, conn *pgxpool.Conn, j *job) (bool, error) {
	var d string
	if err := conn.QueryRow(ctx, sqlDirection, j.account, j.objectType).Scan(&d); err != nil {
		return false, fmt.Errorf("push: sync direction: %w", err)
	}
	return d == "both", nil
}
