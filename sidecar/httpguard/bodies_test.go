package httpguard_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keapsync/keapsync/sidecar/httpguard"
)

// Requests with a body are capped overall and per client address: one over the cap is answered
// 503 with Retry-After before its body is read, a request without a body is never held back,
// and a finished request frees its place.
func TestBodyCap(t *testing.T) {
	t.Parallel()
	entered, release := make(chan struct{}), make(chan struct{})
	h := httpguard.Config{MaxBodies: 2, MaxBodiesPerIP: 1}.Server(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			entered <- struct{}{}
			<-release
		}
		w.Write([]byte("ok"))
	})).Handler
	serve := func(method, path, remote, body string) *httptest.ResponseRecorder {
		var req *http.Request
		if body == "" {
			req = httptest.NewRequest(method, path, nil)
		} else {
			req = httptest.NewRequest(method, path, strings.NewReader(body))
		}
		req.RemoteAddr = remote
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	held := make(chan *httptest.ResponseRecorder, 2)
	go func() { held <- serve("POST", "/hold", "192.0.2.1:1000", "a") }()
	<-entered

	// The same address, another port: over its per-address cap.
	rec := serve("POST", "/", "192.0.2.1:2000", "b")
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") != "5" || rec.Header().Get("Connection") != "close" {
		t.Errorf("a second body from one address: %d %v", rec.Code, rec.Header())
	}
	if rec := serve("GET", "/", "192.0.2.1:3000", ""); rec.Code != http.StatusOK {
		t.Errorf("a request without a body was held back: %d", rec.Code)
	}
	// Another address (one without a port counts as itself) takes the last overall place.
	go func() { held <- serve("POST", "/hold", "192.0.2.2", "c") }()
	<-entered
	if rec := serve("POST", "/", "192.0.2.3:1000", "d"); rec.Code != http.StatusServiceUnavailable {
		t.Errorf("over the overall cap: %d", rec.Code)
	}
	close(release)
	for range 2 {
		if rec := <-held; rec.Code != http.StatusOK {
			t.Errorf("a held request ended with %d", rec.Code)
		}
	}
	if rec := serve("POST", "/", "192.0.2.1:4000", "e"); rec.Code != http.StatusOK {
		t.Errorf("after the held ones finished: %d", rec.Code)
	}
}
