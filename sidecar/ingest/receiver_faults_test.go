package ingest_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keapsync/keapsync/sidecar/ingest"
)

// Only Keap's POST is a delivery: any other method is refused with 405 and Allow: POST, and
// nothing is stored.
func TestReceiverRefusesOtherMethods(t *testing.T) {
	t.Parallel()
	e := newHookEnv(t)
	for _, method := range []string{"GET", "PUT", "DELETE"} {
		req, _ := http.NewRequest(method, e.srv.URL+"/hooks/"+e.token, strings.NewReader(delivery))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "POST" {
			t.Errorf("%s: %d, Allow %q; want 405, Allow POST", method, resp.StatusCode, resp.Header.Get("Allow"))
		}
	}
	if n := e.inbox(t); n != 0 {
		t.Errorf("%d rows stored from refused methods", n)
	}
}

type brokenBody struct{}

func (brokenBody) Read([]byte) (int, error) { return 0, errors.New("connection reset by peer") }

// A delivery whose body breaks off is answered 400 and stores nothing: Keap sends it again.
func TestReceiverBodyCutOffStoresNothing(t *testing.T) {
	t.Parallel()
	e := newHookEnv(t)
	req := httptest.NewRequest("POST", "/hooks/"+e.token, brokenBody{})
	rec := httptest.NewRecorder()
	e.rv.ServeHTTP(rec, req)
	if rec.Code != http.StatusBadRequest {
		t.Errorf("body cut off: %d, want 400", rec.Code)
	}
	if n := e.inbox(t); n != 0 {
		t.Errorf("%d rows stored from a body that broke off", n)
	}
}

// The database lost between finding the hook URL and storing the delivery: 503, so Keap
// retries; nothing was acknowledged that was not stored.
func TestReceiverStoreFailingAsksKeapToRetry(t *testing.T) {
	t.Parallel()
	e := newHookEnv(t)
	db := newFlakyDB(e.db)
	db.failOn("insert into keapsync.webhook_inbox", 1)
	e.rv.DB = db
	if r := e.post(t, "/hooks/"+e.token, delivery, nil); r.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("store failed: %d, want 503", r.StatusCode)
	}
	if n := e.inbox(t); n != 0 {
		t.Fatalf("%d rows stored", n)
	}
	if r := e.post(t, "/hooks/"+e.token, delivery, nil); r.StatusCode != http.StatusOK || e.inbox(t) != 1 {
		t.Errorf("Keap's retry: %d, %d rows; want 200 and the delivery stored", r.StatusCode, e.inbox(t))
	}
}

// A malformed delivery's error quotes at most a clip of what was sent (a 1 MiB event key must
// not come back in the answer or the log), and a tag application whose object_type says "tag"
// names tags even without an apiUrl.
func TestDecodeDeliveryClipsAndReadsObjectType(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 10000)
	for _, body := range []string{
		`{"event_key":"` + long + `","object_keys":[]}`,
		`{"event_key":"contact.add","object_keys":[{"id":"` + long + `"}]}`,
	} {
		_, err := ingest.DecodeDelivery([]byte(body))
		if err == nil || len(err.Error()) > 200 || !strings.Contains(err.Error(), "xxx...") {
			t.Errorf("error %.300q; want one short error with the value clipped", err)
		}
	}
	d, err := ingest.DecodeDelivery([]byte(`{"event_key":"contactGroup.applied","object_type":"Tag","object_keys":[{"id":7},{"id":"8"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(d.TagIDs) != 2 || len(d.IDs) != 0 || len(d.EitherIDs) != 0 {
		t.Errorf("object_type Tag: tags %v, contacts %v, either %v; want both ids as tags", d.TagIDs, d.IDs, d.EitherIDs)
	}
}
