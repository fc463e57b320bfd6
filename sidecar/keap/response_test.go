package keap

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

// A 2xx whose body is empty, null or not the object asked for is an error, never a zero value:
// a zero order is an order with id 0, and its real id would be lost downstream.
func TestEmptyOrUndecodableSuccessIsAnError(t *testing.T) {
	t.Parallel()
	for name, body := range map[string]string{
		"empty":     "",
		"blank":     " \n",
		"null":      "null",
		"truncated": `{"id": 12, "order_`,
		"bad id":    `{"id": "twelve"}`,
		"not JSON":  `<html>ok</html>`,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c := standIn(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = io.WriteString(w, body)
			})
			o, err := c.GetOrder(context.Background(), 12)
			var re *ResponseError
			if o != nil || !errors.Is(err, ErrBadResponse) || !errors.As(err, &re) || re.Status != 200 || string(re.Body) != body {
				t.Fatalf("GetOrder answered %+v, %v", o, err)
			}
			if _, err := c.GetContact(context.Background(), 12); !errors.Is(err, ErrBadResponse) {
				t.Fatalf("GetContact: %v", err)
			}
		})
	}
}

// One item of a list page that does not decode costs only itself: the listing yields the others,
// then an *ItemError carrying the item's id and bytes, and goes on to the next page.
func TestUndecodableListItemCostsOnlyItself(t *testing.T) {
	t.Parallel()
	first := `{"orders": [{"id": 1, "title": "a"}, {"id": 2, "total": 1e400}, {"id": 3}], "count": 4, "next": "NEXT"}`
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("offset") == "3" {
			_, _ = io.WriteString(w, `{"orders": [{"id": 4}], "count": 4}`)
			return
		}
		_, _ = io.WriteString(w, strings.ReplaceAll(first, "NEXT", srv.URL+"/v1/orders?offset=3"))
	}))
	t.Cleanup(srv.Close)
	cfg := DefaultConfig()
	cfg.APIURL = srv.URL
	cfg.Credentials = APIKey("key")
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var ids []ID
	var bad []*ItemError
	for o, err := range c.Orders(context.Background(), OrderQuery{}) {
		var item *ItemError
		switch {
		case errors.As(err, &item):
			bad = append(bad, item)
		case err != nil:
			t.Fatal(err)
		default:
			ids = append(ids, o.ID)
		}
	}
	if !slices.Equal(ids, []ID{1, 3, 4}) || len(bad) != 1 || bad[0].ID != 2 || !errors.Is(bad[0], ErrBadResponse) ||
		!strings.Contains(string(bad[0].Raw), "1e400") {
		t.Fatalf("listed %v, bad %+v", ids, bad)
	}
}
