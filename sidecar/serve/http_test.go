package serve

import (
	"context"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keapsync/keapsync/sidecar/accountstate"
	"github.com/keapsync/keapsync/sidecar/devtools/pgtest"
	"github.com/keapsync/keapsync/sidecar/devtools/testlog"
	"github.com/keapsync/keapsync/sidecar/httpguard"
	"github.com/keapsync/keapsync/sidecar/httpguard/guardtest"
	"github.com/keapsync/keapsync/sidecar/ingest"
	"github.com/keapsync/keapsync/sidecar/pgcluster"
)

// Issue #12: slow bodies to /hooks/<token> stayed open without end and idle keep-alives never
// closed.
func TestServeEndsSlowBodiesAndIdleConnections(t *testing.T) {
	t.Parallel()
	addr, token := startServe(t, httpguard.Config{ReadTimeout: 300 * time.Millisecond, IdleTimeout: 300 * time.Millisecond})
	guardtest.ClosesSlowBody(t, addr, "/hooks/"+token)
	guardtest.ClosesIdle(t, addr, "/healthz")
}

// ... and any number of slow bodies could be held at once.
func TestServeCapsSlowBodies(t *testing.T) {
	t.Parallel()
	addr, token := startServe(t, httpguard.Config{ReadTimeout: time.Minute, MaxBodiesPerIP: 3})
	guardtest.CapsSlowBodies(t, addr, "/hooks/"+token, 3)
}

// startServe runs a Server with hooks only and returns its address and a hook URL token.
func startServe(t testing.TB, hc httpguard.Config) (addr, token string) {
	t.Helper()
	addr, token, _ = startServeDB(t, hc)
	return addr, token
}

// startServeDB is startServe that also returns serve's database.
func startServeDB(t testing.TB, hc httpguard.Config) (addr, token string, db *pgxpool.Pool) {
	t.Helper()
	db = pgtest.Pool(t)
	ctx, cancel := context.WithCancel(context.Background())
	if err := db.QueryRow(ctx, `with a as (insert into keapsync.accounts (name) values ('H') returning id)
	    insert into keapsync.hook_endpoints (account_id) select id from a returning path_token`).Scan(&token); err != nil {
		t.Fatal(err)
	}
	log := testlog.New(t)
	s := &Server{
		// The grace bounds the shutdown; it is not waited out. A second was too short on a
		// loaded machine for the handlers of the slow bodies a test cut off to end and for
		// Shutdown's polling (up to 500 ms apart) to see it: Err said "context deadline exceeded".
		Config: Config{Listen: "127.0.0.1:0", ReconcileEvery: -1, HooksEvery: -1, DeletesEvery: -1, BudgetsEvery: -1,
			ShutdownGrace: 10 * time.Second, HTTP: hc},
		DB: db, Log: log,
		Receiver: &ingest.Receiver{DB: db, Log: log},
		Worker:   &ingest.Worker{DB: db, Log: log},
	}
	if err := s.Start(ctx); err != nil {
		t.Fatalf("serve: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		s.Stop()
		if err := s.Err(); err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return s.Addr(), token, db
}

// Issue #12: with the database down, /readyz printed the DSN's user, database, host and port.
func TestReadyzNamesTheCheckNotTheDSN(t *testing.T) {
	t.Parallel()
	pc := pgtest.Pool(t).Config().Copy()
	port, err := pgcluster.FreePort() // nothing listens there: the database is "down"
	if err != nil {
		t.Fatal(err)
	}
	pc.ConnConfig.Port = uint16(port)
	db, err := pgxpool.NewWithConfig(context.Background(), pc)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cfg := pc.ConnConfig
	s := &Server{DB: db, Log: testlog.New(t)}
	rec := httptest.NewRecorder()
	s.routes(accountstate.Thresholds{}).ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	body := rec.Body.String()
	if rec.Code != 503 || !strings.Contains(body, `"database":"unreachable"`) {
		t.Fatalf("/readyz with the database down: %d %s", rec.Code, body)
	}
	for _, part := range []string{cfg.User, cfg.Database, cfg.Host, strconv.Itoa(int(cfg.Port))} {
		if strings.Contains(body, part) {
			t.Errorf("/readyz shows %q of the DSN: %s", part, body)
		}
	}
}
