package keapspec

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

func exchange(method, target, reqBody string, status int, body string) Exchange {
	r := httptest.NewRequest(method, target, strings.NewReader(reqBody))
	if reqBody != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	return Exchange{Request: r, RequestBody: []byte(reqBody), Status: status,
		Header: http.Header{"Content-Type": {"application/json;charset=UTF-8"}}, Body: []byte(body)}
}

// rawV1 is the v1 document exactly as Keap publishes it (parsed once).
var rawV1 = sync.OnceValues(func() (*Spec, error) { return load(v1JSON, V1Base, "v1", false) })

// TestCorrectionsAreNeeded shows, for each FACTS.md §8 defect, that Keap's document as published
// rejects traffic real Keap produces, and that the corrected document accepts it.
func TestCorrectionsAreNeeded(t *testing.T) {
	t.Parallel()
	fixed, err := NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	raw := &Validator{v1: rawV1, v2: V2}
	cases := []struct {
		name string
		x    Exchange
	}{
		{"duplicate templates: PATCH /v1/contacts/{id} is routed to the GET-only item",
			exchange("PATCH", "http://h/crm/rest/v1/contacts/12", `{"given_name":"A"}`, 200, `{"id":12}`)},
		{"Java Object rendered as type object: custom field content is a string on the wire",
			exchange("GET", "http://h/crm/rest/v1/contacts/12", "", 200, `{"id":12,"custom_fields":[{"id":1,"content":"red"}]}`)},
		{"Map<Long,String> rendered as an array of entries: apply-tag answers an object",
			exchange("POST", "http://h/crm/rest/v1/contacts/12/tags", `{"tagIds":[3]}`, 200, `{"3":"SUCCESS"}`)},
		{"Map<Long,String> on the tag side too",
			exchange("POST", "http://h/crm/rest/v1/tags/3/contacts", `{"ids":[12]}`, 200, `{"12":"DUPLICATE"}`)},
		{"update_mask enum on the array instead of its items",
			exchange("PATCH", "http://h/crm/rest/v1/contacts/12?update_mask=given_name&update_mask=family_name", `{"given_name":"A"}`, 200, `{"id":12}`)},
		{"nothing nullable: absent values come back as null",
			exchange("GET", "http://h/crm/rest/v1/contacts/12", "", 200, `{"id":12,"given_name":null}`)},
	}
	ctx := context.Background()
	for _, c := range cases {
		if err := raw.ValidateExchange(ctx, c.x); err == nil {
			t.Errorf("%s: the published document accepted it; is the correction still needed?", c.name)
		}
		c.x.Request.Body = http.NoBody
		if err := fixed.ValidateExchange(ctx, c.x); err != nil {
			t.Errorf("%s: corrected document rejects real traffic: %v", c.name, err)
		}
	}
}

func TestValidatorRejects(t *testing.T) {
	t.Parallel()
	v, err := NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	bad := map[string]Exchange{
		"id of the wrong type":         exchange("GET", "http://h/crm/rest/v1/contacts/12", "", 200, `{"id":"twelve"}`),
		"enum value Keap never sends":  exchange("GET", "http://h/crm/rest/v1/contacts/12", "", 200, `{"id":12,"email_addresses":[{"email":"a@b","field":"EMAIL9"}]}`),
		"undeclared 2xx status":        exchange("POST", "http://h/crm/rest/v1/contacts", `{"given_name":"A"}`, 200, `{"id":1}`),
		"request body of wrong type":   exchange("POST", "http://h/crm/rest/v1/contacts", `{"given_name":5}`, 201, `{"id":1}`),
		"tag apply result not in enum": exchange("POST", "http://h/crm/rest/v1/tags/3/contacts", `{"ids":[12]}`, 200, `{"12":"MAYBE"}`),
		"v2 id as number":              exchange("GET", "http://h/crm/rest/v2/subscriptions/5", "", 200, `{"id":5}`),
	}
	for name, x := range bad {
		if err := v.ValidateExchange(ctx, x); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if err := v.ValidateExchange(ctx, exchange("GET", "http://h/crm/rest/v1/nope", "", 200, `{}`)); !errors.Is(err, ErrUndocumented) {
		t.Errorf("unknown path: got %v, want ErrUndocumented", err)
	}
	if err := v.ValidateExchange(ctx, exchange("POST", "http://h/token", "", 200, `{}`)); !errors.Is(err, ErrNotKeapAPI) {
		t.Errorf("/token: got %v, want ErrNotKeapAPI", err)
	}
	// 4xx/429 bodies are not declared by Keap; they pass.
	if err := v.ValidateExchange(ctx, exchange("GET", "http://h/crm/rest/v1/contacts", "", 429, `{"fault":{}}`)); err != nil {
		t.Errorf("429: %v", err)
	}
}

func TestTransportReports(t *testing.T) {
	t.Parallel()
	v, err := NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if strings.HasSuffix(r.URL.Path, "/1") {
			_, _ = w.Write([]byte(`{"id":1}`))
			return
		}
		_, _ = w.Write([]byte(`{"id":"bad"}`))
	}))
	defer ts.Close()
	var reported []error
	c := &http.Client{Transport: &Transport{Validator: v, Report: func(err error) { reported = append(reported, err) }}}
	for _, p := range []string{"/crm/rest/v1/contacts/1", "/crm/rest/v1/contacts/2", "/token"} {
		resp, err := c.Get(ts.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if len(reported) != 1 || !strings.Contains(reported[0].Error(), "/contacts/2") {
		t.Fatalf("reported %v, want exactly the /contacts/2 violation", reported)
	}
}

// FuzzValidateExchange: arbitrary bodies must never panic the validator.
func FuzzValidateExchange(f *testing.F) {
	v, err := NewValidator()
	if err != nil {
		f.Fatal(err)
	}
	f.Add("/crm/rest/v1/contacts/1", `{"id":1}`)
	f.Add("/crm/rest/v1/contacts", `{"contacts":[{"id":1,"custom_fields":[{"id":1,"content":{}}]}],"count":1}`)
	f.Add("/crm/rest/v1/tags/1/contacts", `[{"key":"SUCCESS"}]`)
	f.Fuzz(func(t *testing.T, path, body string) {
		if !strings.HasPrefix(path, "/") || strings.ContainsAny(path, " \t\r\n?#%") {
			return
		}
		r, err := http.NewRequest("GET", "http://h"+path, nil)
		if err != nil {
			return
		}
		_ = v.ValidateExchange(context.Background(), Exchange{Request: r, Status: 200,
			Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(body)})
	})
}
