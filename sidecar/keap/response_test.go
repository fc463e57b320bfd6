package keap

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
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
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = io.WriteString(w, body)
			}))
			t.Cleanup(srv.Close)
			cfg := DefaultConfig()
			cfg.APIURL = srv.URL
			cfg.Credentials = APIKey("key")
			c, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
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
