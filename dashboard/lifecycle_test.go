package dashboard

import (
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/keapsync/keapsync/sidecar/devtools/pgtest"
	"github.com/keapsync/keapsync/sidecar/devtools/testlog"
	"github.com/keapsync/keapsync/sidecar/pgcluster"
)

// The dashboard as serve runs it: Start listens and serves at URL until Stop, a taken address
// is named by its variable, and Run returns cleanly once ctx ends.
func TestStartServesUntilStop(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	port, err := pgcluster.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Local, cfg.Listen, cfg.Log = true, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), testlog.New(t)
	s, err := New(cfg, pgtest.Pool(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(s.URL() + "/signin")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "Sign in as the demo user") {
		t.Errorf("GET %s/signin: %d", s.URL(), resp.StatusCode)
	}

	// A second Start while it listens: the address is taken, and the error names its variable.
	if err := s.Start(ctx); err == nil || !strings.Contains(err.Error(), "KEAPSYNC_DASHBOARD_LISTEN") {
		t.Errorf("a second Start: %v", err)
	}

	s.Stop()
	select {
	case <-s.Done():
	default:
		t.Fatal("Stop returned before the dashboard ended")
	}
	if err := s.Err(); err != nil {
		t.Errorf("stopped: %v", err)
	}
	ended, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.Run(ended); err != nil {
		t.Errorf("Run with an ended context: %v", err)
	}
}
