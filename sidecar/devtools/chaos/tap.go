package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// tap stands between one keapsync process and Keap (the sandbox): that process's --api-url and
// --token-url name the tap. It forwards every call and counts what is in flight by kind, and an
// armed trap holds the first matching call, so a SIGKILL lands exactly mid-refresh, mid-push or
// mid-backfill instead of somewhere near one by luck.
type tap struct {
	name   string // the serve it belongs to, or "backfill"
	url    string
	srv    *http.Server
	rp     *httputil.ReverseProxy
	mu     sync.Mutex
	flight map[callKind]int
	trap   *trap
}

type callKind string

const (
	callRefresh callKind = "refresh" // POST /token: the token row is locked while it is out
	callWrite   callKind = "push"    // a change sent to Keap
	callRead    callKind = "read"
)

func kindOfCall(r *http.Request) callKind {
	switch {
	case r.URL.Path == "/token":
		return callRefresh
	case r.Method == http.MethodGet || strings.Contains(r.URL.Path, "/hooks"):
		return callRead
	}
	return callWrite
}

func startTap(name, target string) (*tap, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("tap %s: %w", name, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("tap %s: listen: %w", name, err)
	}
	t := &tap{name: name, url: "http://" + ln.Addr().String(), flight: map[callKind]int{},
		rp: httputil.NewSingleHostReverseProxy(u)}
	// A killed caller cancels its call; that is the point, not something to log.
	t.rp.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
		http.Error(w, "tap "+name+": "+err.Error(), http.StatusBadGateway)
	}
	t.rp.ModifyResponse = t.holdAnswer
	t.srv = &http.Server{Handler: t, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = t.srv.Serve(ln) }()
	return t, nil
}

func (t *tap) close() { _ = t.srv.Close() }

func (t *tap) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	k := kindOfCall(r)
	t.mu.Lock()
	t.flight[k]++
	tr := t.trap
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		t.flight[k]--
		t.mu.Unlock()
	}()
	if tr != nil && !tr.afterKeap && tr.take(t.name, k, r) && !tr.wait(r.Context()) {
		// The caller was killed while its call was held: Keap must never see it (a refresh
		// sent now would rotate a token nobody is left to store).
		http.Error(w, "held by the chaos harness; the caller is gone", http.StatusBadGateway)
		return
	}
	t.rp.ServeHTTP(w, r)
}

// holdAnswer holds Keap's answer to a call an after-Keap trap matches: Keap did the work, and
// the caller is killed before it hears so.
func (t *tap) holdAnswer(resp *http.Response) error {
	t.mu.Lock()
	tr := t.trap
	t.mu.Unlock()
	if tr != nil && tr.afterKeap && resp.StatusCode < 300 && tr.take(t.name, kindOfCall(resp.Request), resp.Request) {
		tr.wait(resp.Request.Context())
	}
	return nil
}

// inFlight describes the calls this tap is forwarding right now.
func (t *tap) inFlight() map[callKind]int {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[callKind]int{}
	for k, n := range t.flight {
		if n > 0 {
			out[k] = n
		}
	}
	return out
}

func describeFlight(m map[callKind]int) string {
	if len(m) == 0 {
		return "no Keap call in flight"
	}
	var parts []string
	for _, k := range []callKind{callRefresh, callWrite, callRead} {
		if m[k] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", m[k], k))
		}
	}
	return strings.Join(parts, ", ") + " in flight"
}

func (t *tap) arm(tr *trap) {
	t.mu.Lock()
	t.trap = tr
	t.mu.Unlock()
}

func (t *tap) disarm(tr *trap) {
	t.mu.Lock()
	if t.trap == tr {
		t.trap = nil
	}
	t.mu.Unlock()
}

// trap holds one call of a kind (and path) at whichever tap sees it first.
type trap struct {
	kind      callKind
	path      string // the call's path must contain this ("": any)
	afterKeap bool   // hold Keap's answer, not the call
	taken     atomic.Bool
	held      chan heldCall // gets the one call held
	release   chan struct{}
	killed    atomic.Bool // set before release when the caller was killed
}

type heldCall struct {
	tap  string
	call string
}

func newTrap(kind callKind, path string, afterKeap bool) *trap {
	return &trap{kind: kind, path: path, afterKeap: afterKeap, held: make(chan heldCall, 1), release: make(chan struct{})}
}

func (tr *trap) take(tapName string, k callKind, r *http.Request) bool {
	if k != tr.kind || !strings.Contains(r.URL.Path, tr.path) || !tr.taken.CompareAndSwap(false, true) {
		return false
	}
	tr.held <- heldCall{tap: tapName, call: r.Method + " " + r.URL.Path}
	return true
}

// wait holds the call until the harness releases it or the caller goes away; it reports whether
// the call may go on.
func (tr *trap) wait(ctx context.Context) bool {
	select {
	case <-tr.release:
		return !tr.killed.Load() && ctx.Err() == nil
	case <-ctx.Done():
		return false
	}
}

// done lets the held call go on, or with killed set, drops it.
func (tr *trap) done(killed bool) {
	tr.killed.Store(killed)
	close(tr.release)
}
