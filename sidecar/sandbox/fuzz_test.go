package sandbox

import (
	"bytes"
	"encoding/json"
	"net/url"
	"testing"
	"time"
)

// FuzzContactWrite feeds arbitrary JSON bodies to the contact create/update path, the parser of
// outside input with the most type assertions. It must never panic, and whatever it accepts
// must render and re-parse.
func FuzzContactWrite(f *testing.F) {
	f.Add(`{"email_addresses":[{"email":"a@b","field":"EMAIL1"}],"custom_fields":[{"id":1,"content":"x"}]}`, `{"given_name":null}`)
	f.Add(`{"phone_numbers":[{"number":"1","field":"PHONE1"}],"addresses":[{"field":"BILLING","region":"AZ","country_code":"US"}]}`, `{"email_addresses":[]}`)
	f.Add(`{"email_addresses":[{"field":"EMAIL1"}]}`, `{"custom_fields":[{"id":"1"}]}`)
	f.Add(`{"email_addresses":"x"}`, `{"owner_id":1e99}`)
	f.Fuzz(func(t *testing.T, create, patch string) {
		s := newStore(NewManualClock(t0))
		generate(s, 1, 1)
		decode := func(in string) map[string]any {
			dec := json.NewDecoder(bytes.NewReader([]byte(in)))
			dec.UseNumber()
			var m map[string]any
			if dec.Decode(&m) != nil {
				return nil
			}
			return m
		}
		if body := decode(create); body != nil {
			if c, err := s.createContact(body); err == nil {
				if _, err := json.Marshal(c.render(allOptional())); err != nil {
					t.Fatalf("accepted contact does not render: %v", err)
				}
			}
		}
		if body := decode(patch); body != nil {
			if c, err := s.updateContact(1, body, nil); err == nil {
				if _, err := json.Marshal(c.render(allOptional())); err != nil {
					t.Fatalf("patched contact does not render: %v", err)
				}
			}
		}
	})
}

// FuzzQueryParams: paging, list and time parameters from the query string.
func FuzzQueryParams(f *testing.F) {
	f.Add("limit=10&offset=5&ids=1,2&since=2026-01-01T00:00:00.000Z")
	f.Add("limit=-1&ids=a&since=yesterday")
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		if p, err := parsePage(q); err == nil {
			lo, hi := p.bounds(50)
			if lo < 0 || hi > 50 || lo > hi || hi-lo > 1000 {
				t.Fatalf("bounds %d..%d from %q", lo, hi, raw)
			}
		}
		_, _ = parseIDs(listValues(q, "ids"))
		if tm, err := timeParam(q.Get("since")); err == nil && !tm.IsZero() && tm.Location() != time.UTC {
			t.Fatalf("since not in UTC: %v", tm)
		}
	})
}
