package push

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keapsync/keapsync/sidecar/devtools/pgtest"
)

// The least-privilege sidecar role may not publish tables it does not own: a publication name
// the migrations did not create stops the push path with the statement to run as the owner.
func TestMissingPublicationNamesTheStatement(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	u, err := url.Parse(pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User("keapsync_sidecar")
	db, err := pgxpool.New(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cfg := DefaultConfig()
	cfg.DB, cfg.Publication = db, "keapsync_elsewhere"
	cfg.API = func(context.Context, string) (Keap, error) { return nil, fmt.Errorf("not used") }
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	err = p.ensurePublication(ctx)
	if !errors.Is(err, ErrPublication) || !strings.Contains(err.Error(), `create publication "keapsync_elsewhere" for table "keap".`) ||
		!strings.Contains(err.Error(), `"keap"."contacts"`) {
		t.Fatalf("err = %v", err)
	}
	// With the publication the migrations made, the same role needs nothing more.
	p.cfg.Publication = "keapsync_push"
	if err := p.ensurePublication(ctx); err != nil {
		t.Fatal(err)
	}
}

// A publication the pusher may create (its role owns the keap tables) is created with every
// synced table, and one that lost a table gets it back on the next start.
func TestPublicationIsCreatedAndCompleted(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.Pool(t)
	cfg := DefaultConfig()
	cfg.DB, cfg.Publication = db, "keapsync_own"
	cfg.API = func(context.Context, string) (Keap, error) { return nil, fmt.Errorf("not used") }
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	published := func() int {
		var n int
		if err := db.QueryRow(ctx, `select count(*) from pg_publication_tables where pubname = 'keapsync_own'
		    and schemaname = 'keap' and tablename = any ($1)`, Tables).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if err := p.ensurePublication(ctx); err != nil {
		t.Fatal(err)
	}
	if n := published(); n != len(Tables) {
		t.Fatalf("created with %d of %d tables", n, len(Tables))
	}
	if _, err := db.Exec(ctx, `alter publication keapsync_own drop table keap.notes, keap.tasks`); err != nil {
		t.Fatal(err)
	}
	if err := p.ensurePublication(ctx); err != nil {
		t.Fatal(err)
	}
	if n := published(); n != len(Tables) {
		t.Errorf("after losing two tables and a start: %d of %d tables", n, len(Tables))
	}
}
