package serve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/keapsync/keapsync/sidecar/accountstate"
	"github.com/keapsync/keapsync/sidecar/devtools/pgtest"
	"github.com/keapsync/keapsync/sidecar/devtools/testlog"
	"github.com/keapsync/keapsync/sidecar/ingest"
	"github.com/keapsync/keapsync/sidecar/lifecycle"
	"github.com/keapsync/keapsync/sidecar/pgcluster"
)

// hooksOnly is a Server with the receiver and the inbox workers, and no scheduled rounds.
func hooksOnly(t *testing.T, db *pgxpool.Pool, listen string) *Server {
	log := testlog.New(t)
	return &Server{
		Config: Config{Listen: listen, ReconcileEvery: -1, HooksEvery: -1, DeletesEvery: -1, BudgetsEvery: -1, ShutdownGrace: time.Second},
		DB:     db, Log: log,
		Receiver: &ingest.Receiver{DB: db, Log: log},
		Worker:   &ingest.Worker{DB: db, Log: log},
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// A Start that cannot run says why and leaves nothing behind: no part started, its address
// free for the next try; and a Start of a running server is refused without touching it.
func TestStartThatFailsLeavesNothingBehind(t *testing.T) {
	t.Parallel()
	db := pgtest.Pool(t)
	ctx := context.Background()

	t.Run("address taken", func(t *testing.T) {
		taken, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer taken.Close()
		s := hooksOnly(t, db, taken.Addr().String())
		if err := s.Start(ctx); err == nil || !strings.Contains(err.Error(), "KEAPSYNC_LISTEN") {
			t.Errorf("Start on a taken address: %v; want the setting named", err)
		}
		if s.Done() != nil {
			t.Error("parts were started")
		}
	})

	t.Run("ops metrics registered already", func(t *testing.T) {
		reg := prometheus.NewRegistry()
		first := hooksOnly(t, db, "127.0.0.1:0")
		first.Registry = reg
		if err := first.Start(ctx); err != nil {
			t.Fatal(err)
		}
		defer first.Stop()
		port, err := pgcluster.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		second := hooksOnly(t, db, addr)
		second.Registry = reg
		if err := second.Start(ctx); err == nil || !strings.Contains(err.Error(), "register ops metrics") {
			t.Fatalf("Start with the ops metrics registered already: %v", err)
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("the failed Start kept its address: %v", err)
		}
		ln.Close()
	})

	t.Run("started already", func(t *testing.T) {
		s := hooksOnly(t, db, "127.0.0.1:0")
		if err := s.Start(ctx); err != nil {
			t.Fatal(err)
		}
		defer s.Stop()
		addr := s.Addr()
		if err := s.Start(ctx); !errors.Is(err, lifecycle.ErrStarted) {
			t.Errorf("a second Start: %v", err)
		}
		if s.Addr() != addr {
			t.Errorf("Addr is %s after a refused second Start, want the running server's %s", s.Addr(), addr)
		}
		if code, _ := get(t, "http://"+addr+"/healthz"); code != http.StatusOK {
			t.Errorf("the running server after a refused second Start: /healthz %d", code)
		}
	})
}

// The HTTP surface: /metrics carries the ops figures read from the database, /oauth/ goes to
// the connect flow, and /readyz fails while an account waits for a person, naming it.
func TestHTTPSurface(t *testing.T) {
	t.Parallel()
	db := pgtest.Pool(t)
	ctx := context.Background()
	if _, err := db.Exec(ctx, `insert into keapsync.accounts (name, keap_tenant, credential, needs_reauth) values ('Lapsed', 'lapsed', 'oauth', true)`); err != nil {
		t.Fatal(err)
	}
	s := hooksOnly(t, db, "127.0.0.1:0")
	s.Registry = prometheus.NewRegistry()
	s.Connect = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "connect flow: "+r.URL.Path) })
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	base := "http://" + s.Addr()
	if code, body := get(t, base+"/metrics"); code != http.StatusOK || !strings.Contains(body, "keapsync_ops_figures_up 1") ||
		!strings.Contains(body, `keapsync_account_needs_reauth{account="lapsed"} 1`) {
		t.Errorf("/metrics: %d\n%s", code, body)
	}
	if code, body := get(t, base+"/oauth/start"); code != http.StatusOK || body != "connect flow: /oauth/start" {
		t.Errorf("/oauth/start: %d %s", code, body)
	}
	if code, body := get(t, base+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "lapsed") {
		t.Errorf("/readyz with an account needing re-authorization: %d %s", code, body)
	}
}

// /readyz on its own (Ready, as the state-matrix test calls it) judges stalls by the configured
// threshold, started or not: work waiting ten minutes is a stall under a five-minute threshold.
func TestReadyUsesTheConfiguredStallThreshold(t *testing.T) {
	t.Parallel()
	db := pgtest.Pool(t)
	if _, err := db.Exec(context.Background(), `with a as (insert into keapsync.accounts (name, keap_tenant, credential) values ('S', 'slow', 'api_key') returning id)
	    insert into keapsync.push_queue (account_id, object_type, local_id, first_enqueued_at, next_attempt_at)
	    select id, 'contact', 1, now() - interval '10 minutes', now() - interval '10 minutes' from a`); err != nil {
		t.Fatal(err)
	}
	s := &Server{DB: db, Log: testlog.New(t), Config: Config{Stalls: accountstate.Thresholds{Stall: 5 * time.Minute}}}
	if code, body := readyz(t, s); code != http.StatusServiceUnavailable || !strings.Contains(body, "stalled push") {
		t.Errorf("push waiting 10 minutes under a 5-minute threshold: /readyz %d %s", code, body)
	}
}
