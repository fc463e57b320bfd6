package dashboard

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/keapsync/keapsync/sidecar/devtools/pgtest"
	"github.com/keapsync/keapsync/sidecar/httpguard"
	"github.com/keapsync/keapsync/sidecar/httpguard/guardtest"
)

// Issue #12: the dashboard's server had no read or idle timeouts (POST /signin held open by a
// slow body, idle keep-alives never closed) and no cap on slow bodies.
func TestDashboardEndsSlowBodiesAndIdleConnections(t *testing.T) {
	addr := startDashboard(t, httpguard.Config{ReadTimeout: 300 * time.Millisecond, IdleTimeout: 300 * time.Millisecond})
	guardtest.ClosesSlowBody(t, addr, "/signin")
	guardtest.ClosesIdle(t, addr, "/signin")
}

func TestDashboardCapsSlowBodies(t *testing.T) {
	addr := startDashboard(t, httpguard.Config{ReadTimeout: time.Minute, MaxBodiesPerIP: 3})
	guardtest.CapsSlowBodies(t, addr, "/signin", 3)
}

// startDashboard serves a local-mode dashboard through Serve, the way Run does.
func startDashboard(t *testing.T, hc httpguard.Config) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(Config{Local: true, JWTSecret: testSecret, PublicURL: "http://" + ln.Addr().String(),
		Log: testLogger(t), HTTP: hc}, pgtest.Pool(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("dashboard: %v", err)
		}
	})
	return ln.Addr().String()
}
