package push_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// A change made while contacts synced both ways, still queued when the account switched them to
// Keap → Postgres only, is not sent: push follows the direction at the time it would send. It is
// parked saying why, not dropped, and a person who sets the direction back can send it.
func TestKeapOnlyTypeIsNotPushed(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 5)
	w.start(w.pusher(w.config(nil)).Run)
	w.quiet()
	w.sb.ClearRequests()
	id, kid := w.synced(0)
	err := pgx.BeginFunc(context.Background(), w.db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(context.Background(), `update keap.contacts set job_title = 'Queued' where id = $1`, id); err != nil {
			return err
		}
		_, err := tx.Exec(context.Background(), `update keapsync.sync_directions set direction = 'keap_to_postgres'
		    where account_id = $1 and object_type = 'contact'`, w.account)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	w.quiet()
	if got := w.writes(); len(got) != 0 {
		t.Errorf("pushed a Keap → Postgres contact: %v", got)
	}
	if c := w.contact(kid); c.JobTitle == "Queued" {
		t.Error("the local edit reached Keap")
	}
	var letter int64
	var reason string
	if err := w.db.QueryRow(context.Background(), `select id, error from keapsync.dead_letters
	    where source = 'push' and object_type = 'contact' and local_id = $1 and status = 'parked'`, id).Scan(&letter, &reason); err != nil {
		t.Fatalf("the edit not sent was not parked where a person sees it: %v", err)
	}
	if !strings.Contains(reason, "keap_to_postgres") || !strings.Contains(reason, "retry this dead letter") {
		t.Errorf("the dead letter does not say why or what to do: %q", reason)
	}
	w.exec(`update keapsync.sync_directions set direction = 'both' where account_id = $1 and object_type = 'contact'`, w.account)
	w.retry(letter)
	w.quiet()
	if c := w.contact(kid); c.JobTitle != "Queued" {
		t.Errorf("retried after the direction was set back, Keap has job title %q", c.JobTitle)
	}
}
