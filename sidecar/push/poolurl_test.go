package push_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keapsync/keapsync/sidecar/devtools/pgtest"
	"github.com/keapsync/keapsync/sidecar/sandbox"
)

// A database URL carrying the pool's own settings (pool_max_conns, as KEAPSYNC_DATABASE_URL
// may) still opens the replication connection: those settings are not sent to the server.
func TestDatabaseURLWithPoolSettings(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	db, err := pgxpool.New(context.Background(), url+sep+"pool_max_conns=6&pool_min_conns=1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	w := newWorldOn(t, sandbox.Options{Seed: 11, Contacts: 3, Unthrottled: true, Limits: roomy}, db)
	w.start(w.pusher(w.config(nil)).Run)
	w.quiet()
	id, kid := w.synced(0)
	w.exec(`update keap.contacts set job_title = 'Through a tuned pool' where id = $1`, id)
	w.quiet()
	if c := w.contact(kid); c.JobTitle != "Through a tuned pool" {
		t.Errorf("job title in Keap %q", c.JobTitle)
	}
}
