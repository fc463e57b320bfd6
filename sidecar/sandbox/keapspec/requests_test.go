package keapspec

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// ValidateRequest checks a request on its own (parameters and body); ValidateBody only the body,
// and accepts an operation without one.
func TestValidateRequestAndBody(t *testing.T) {
	t.Parallel()
	v, err := NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	req := func(method, target, body string) (*http.Request, []byte) {
		r := httptest.NewRequest(method, target, strings.NewReader(body))
		if body != "" {
			r.Header.Set("Content-Type", "application/json")
		}
		return r, []byte(body)
	}
	good, goodBody := req("POST", "http://h/crm/rest/v1/contacts", `{"given_name":"A"}`)
	if err := v.ValidateRequest(ctx, good, goodBody); err != nil {
		t.Errorf("a good create: %v", err)
	}
	if err := v.ValidateBody(ctx, good, goodBody); err != nil {
		t.Errorf("a good create's body: %v", err)
	}
	bad, badBody := req("POST", "http://h/crm/rest/v1/contacts", `{"given_name":5}`)
	if err := v.ValidateRequest(ctx, bad, badBody); err == nil || !strings.Contains(err.Error(), "request POST /crm/rest/v1/contacts") {
		t.Errorf("a name of the wrong type: %v", err)
	}
	if err := v.ValidateBody(ctx, bad, badBody); err == nil || !strings.Contains(err.Error(), "request body POST") {
		t.Errorf("the body alone: %v", err)
	}
	get, _ := req("GET", "http://h/crm/rest/v1/contacts/12", "")
	if err := v.ValidateBody(ctx, get, nil); err != nil {
		t.Errorf("an operation without a body: %v", err)
	}
	nope, _ := req("GET", "http://h/crm/rest/v1/nope", "")
	if err := v.ValidateRequest(ctx, nope, nil); !errors.Is(err, ErrUndocumented) {
		t.Errorf("unknown path: %v", err)
	}
	if err := v.ValidateBody(ctx, nope, nil); !errors.Is(err, ErrUndocumented) {
		t.Errorf("unknown path, body only: %v", err)
	}
}
