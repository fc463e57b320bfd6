package ingest_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keapsync/keapsync/sidecar/devtools/pgtest"
	"github.com/keapsync/keapsync/sidecar/ingest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

type hookEnv struct {
	db    *pgxpool.Pool
	srv   *httptest.Server
	token string
	rv    *ingest.Receiver
}

func newHookEnv(t *testing.T) *hookEnv {
	t.Helper()
	db := pgtest.Pool(t)
	ctx := context.Background()
	e := &hookEnv{db: db, rv: &ingest.Receiver{DB: db}}
	if err := db.QueryRow(ctx, `with a as (insert into keapsync.accounts (name) values ('H') returning id)
	    insert into keapsync.hook_endpoints (account_id) select id from a returning path_token`).Scan(&e.token); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/hooks/", e.rv)
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	return e
}

func (e *hookEnv) post(t *testing.T, path, body string, header map[string]string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("POST", e.srv.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func (e *hookEnv) inbox(t *testing.T) int {
	t.Helper()
	var n int
	if err := e.db.QueryRow(context.Background(), `select count(*) from keapsync.webhook_inbox`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

const delivery = `{"event_key":"contact.edit","object_type":"contact","object_keys":[{"id":12,"apiUrl":"","timestamp":"2026-01-01T00:00:00Z"},{"id":"13"}]}`

func TestReceiverStoresBeforeAnswering(t *testing.T) {
	e := newHookEnv(t)
	if r := e.post(t, "/hooks/"+e.token, delivery, nil); r.StatusCode != 200 {
		t.Fatalf("delivery: %d", r.StatusCode)
	}
	var ids []int64
	var typ string
	if err := e.db.QueryRow(context.Background(), `select object_type, object_ids from keapsync.webhook_inbox`).Scan(&typ, &ids); err != nil {
		t.Fatal(err)
	}
	if typ != "contact" || len(ids) != 2 || ids[0] != 12 || ids[1] != 13 {
		t.Errorf("stored %s %v", typ, ids)
	}
	if r := e.post(t, "/hooks/"+e.token, delivery, nil); r.StatusCode != 200 || e.inbox(t) != 1 {
		t.Errorf("a retried delivery: %d, %d rows; want 200 and still one row", r.StatusCode, e.inbox(t))
	}
	if r := e.post(t, "/hooks/"+e.token, `{"event_key":"appointment.add","object_keys":[{"id":1}]}`, nil); r.StatusCode != 200 || e.inbox(t) != 1 {
		t.Errorf("an event keapsync ignores: %d, %d rows; want 200, nothing stored", r.StatusCode, e.inbox(t))
	}
}

func TestReceiverRefusesBadRequestsAndStoresNothing(t *testing.T) {
	e := newHookEnv(t)
	big := `{"event_key":"contact.add","object_keys":[` + strings.Repeat(`{"id":1},`, 200000) + `{"id":2}]}`
	for _, tc := range []struct {
		name, path, body string
		want             int
	}{
		{"unknown URL: retired, 410 so Keap deactivates", "/hooks/not-a-token", delivery, 410},
		{"no token", "/hooks/", delivery, 404},
		{"malformed JSON", "/hooks/" + e.token, `{"event_key":`, 400},
		{"not an object", "/hooks/" + e.token, `[1,2]`, 400},
		{"bad event key", "/hooks/" + e.token, `{"event_key":"<script>","object_keys":[]}`, 400},
		{"bad id", "/hooks/" + e.token, `{"event_key":"contact.add","object_keys":[{"id":-4}]}`, 400},
		{"trailing data", "/hooks/" + e.token, delivery + `{}`, 400},
		{"oversize", "/hooks/" + e.token, big, 413},
	} {
		if r := e.post(t, tc.path, tc.body, nil); r.StatusCode != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, r.StatusCode, tc.want)
		}
	}
	if n := e.inbox(t); n != 0 {
		t.Errorf("%d rows stored from refused requests", n)
	}
}

func TestReceiverHandshakeAndSignature(t *testing.T) {
	e := newHookEnv(t)
	resp := e.post(t, "/hooks/"+e.token, "", map[string]string{"X-Hook-Secret": "s3cret"})
	if resp.StatusCode != 200 || resp.Header.Get("X-Hook-Secret") != "s3cret" {
		t.Errorf("handshake: %d %q", resp.StatusCode, resp.Header.Get("X-Hook-Secret"))
	}
	if resp := e.post(t, "/hooks/nope", "", map[string]string{"X-Hook-Secret": "s3cret"}); resp.StatusCode != 410 || resp.Header.Get("X-Hook-Secret") != "" {
		t.Errorf("handshake on an unknown URL must not verify: %d", resp.StatusCode)
	}

	e.rv.SigningKey = []byte("relay key")
	mac := hmac.New(sha256.New, e.rv.SigningKey)
	mac.Write([]byte(delivery))
	good := hex.EncodeToString(mac.Sum(nil))
	if r := e.post(t, "/hooks/"+e.token, delivery, map[string]string{"X-Hook-Signature": strings.Repeat("0", 64)}); r.StatusCode != 401 {
		t.Errorf("wrong signature: %d", r.StatusCode)
	}
	if r := e.post(t, "/hooks/"+e.token, delivery, nil); r.StatusCode != 401 || e.inbox(t) != 0 {
		t.Errorf("missing signature: %d", r.StatusCode)
	}
	if r := e.post(t, "/hooks/"+e.token, delivery, map[string]string{"X-Hook-Signature": "sha256=" + good}); r.StatusCode != 200 || e.inbox(t) != 1 {
		t.Errorf("good signature: %d", r.StatusCode)
	}
}

func TestReceiverDeadDatabaseAsksKeapToRetry(t *testing.T) {
	e := newHookEnv(t)
	e.db.Close()
	if r := e.post(t, "/hooks/"+e.token, delivery, nil); r.StatusCode != 503 {
		t.Errorf("with the database gone: %d, want 503 so Keap retries", r.StatusCode)
	}
}

func stringsReader(s string) *strings.Reader { return strings.NewReader(s) }

// Bad input is a 4xx and a quiet log line, never a 503 with an ERROR (issue #12).
func TestReceiverMalformedURLIsNotAnOutage(t *testing.T) {
	e := newHookEnv(t)
	var logs bytes.Buffer
	e.rv.Log = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	for _, path := range []string{"/hooks/%00abc", "/hooks/%ffabc", "/hooks/abc%00", "/hooks/a%20b", "/hooks/" + strings.Repeat("a", 129)} {
		if r := e.post(t, path, delivery, nil); r.StatusCode != 404 {
			t.Errorf("POST %s: %d, want 404", path, r.StatusCode)
		}
	}
	if strings.Contains(logs.String(), "level=ERROR") || strings.Contains(logs.String(), "level=WARN") {
		t.Errorf("malformed hook URLs logged as errors:\n%s", logs.String())
	}
}

// An unknown hook URL is refused before its body is read: a client that sends headers and then
// trickles (or never sends) the body gets its answer at once: 410 for a URL keapsync does not
// (or no longer) serve, so Keap deactivates it; 404 for one that cannot be a hook URL at all.
func TestReceiverRefusesUnknownURLBeforeTheBody(t *testing.T) {
	e := newHookEnv(t)
	for path, want := range map[string]int{"/hooks/not-a-token": 410, "/hooks/%00abc": 404} {
		conn, err := net.Dial("tcp", strings.TrimPrefix(e.srv.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{", path)
		// A bound so the test fails instead of hanging; the answer needs no body bytes at all.
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("POST %s with the body withheld: no answer: %v", path, err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("POST %s: %d, want %d", path, resp.StatusCode, want)
		}
	}
}
