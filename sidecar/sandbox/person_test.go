package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keapsync/keapsync/sidecar/sandbox/keapspec"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// start runs a sandbox on a free loopback port with a manual clock, logs going to t.Log. The
// clock stands still, so throttling is off here (10/s would trip); startThrottled keeps it.
func start(t *testing.T, o Options) (*Server, *ManualClock) {
	t.Helper()
	o.Unthrottled = true
	return startThrottled(t, o)
}

func startThrottled(t *testing.T, o Options) (*Server, *ManualClock) {
	t.Helper()
	clock := NewManualClock(t0)
	if o.Clock == nil {
		o.Clock = clock
	}
	o.Logger = slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if o.DispatchInterval == 0 {
		o.DispatchInterval = 2 * time.Millisecond
	}
	srv, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv, clock
}

// client talks to the sandbox over real HTTP. Unless raw, every REST exchange is checked
// against Keap's corrected OpenAPI documents and any violation fails the test.
type client struct {
	t      *testing.T
	srv    *Server
	hc     *http.Client
	header http.Header
}

func newClient(t *testing.T, srv *Server, raw bool) *client {
	t.Helper()
	var rt http.RoundTripper = http.DefaultTransport
	if !raw {
		v, err := keapspec.NewValidator()
		if err != nil {
			t.Fatal(err)
		}
		rt = &keapspec.Transport{Validator: v, Report: func(err error) { t.Errorf("contract violation: %v", err) }}
	}
	return &client{t: t, srv: srv, header: http.Header{"X-Keap-Api-Key": {srv.Credentials().PersonalKey}},
		hc: &http.Client{Transport: rt, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (c *client) withBearer(token string) *client {
	cp := *c
	cp.header = http.Header{"Authorization": {"Bearer " + token}}
	return &cp
}

// do sends a request; path is relative to the server root unless absolute. body may be a
// string (sent as is) or a value (sent as JSON).
func (c *client) do(method, path string, body any) (*http.Response, []byte) {
	c.t.Helper()
	var rdr io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rdr = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			c.t.Fatal(err)
		}
		rdr = bytes.NewReader(raw)
	}
	target := path
	if !strings.HasPrefix(path, "http") {
		target = c.srv.URL() + path
	}
	req, err := http.NewRequest(method, target, rdr)
	if err != nil {
		c.t.Fatal(err)
	}
	for k, v := range c.header {
		req.Header[k] = v
	}
	if rdr != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return resp, data
}

// json sends a request, requires the status and decodes the body into out (if non-nil).
func (c *client) json(method, path string, body any, status int, out any) {
	c.t.Helper()
	resp, data := c.do(method, path, body)
	if resp.StatusCode != status {
		c.t.Fatalf("%s %s: status %d, want %d: %s", method, path, resp.StatusCode, status, data)
	}
	if out != nil {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		if err := dec.Decode(out); err != nil {
			c.t.Fatalf("%s %s: decode: %v: %s", method, path, err, data)
		}
	}
}

// form posts a form, e.g. to /token.
func (c *client) form(path string, v url.Values, basicUser, basicPass string) (*http.Response, map[string]any) {
	c.t.Helper()
	req, err := http.NewRequest(http.MethodPost, c.srv.URL()+path, strings.NewReader(v.Encode()))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basicUser != "" {
		req.SetBasicAuth(basicUser, basicPass)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp, out
}

// settle runs the hook dispatcher until nothing due is left and nothing is in flight, so
// delivery tests are exact without sleeping.
func settle(t *testing.T, srv *Server) {
	t.Helper()
	q := srv.queue
	deadline := time.Now().Add(20 * time.Second) // a hang guard, not a performance bound
	for q.dispatch(context.Background()); q.busy(); q.dispatch(context.Background()) {
		if time.Now().After(deadline) {
			t.Fatal("hook queue does not settle")
		}
		time.Sleep(time.Millisecond)
	}
}

func num(v any) int64 {
	n, _ := asInt64(v)
	return n
}

func fmtJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
