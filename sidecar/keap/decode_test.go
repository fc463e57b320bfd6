package keap

import (
	"encoding/json"
	"errors"
	"testing"
	"time"
)

func TestDecodeID(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want ID
		err  bool
	}{
		{`12`, 12, false}, {`"12"`, 12, false}, {`" 12 "`, 12, false}, {`12.0`, 12, false},
		{`null`, 0, false}, {`""`, 0, false}, {`9007199254740993`, 9007199254740993, false},
		{`"9223372036854775807"`, 9223372036854775807, false},
		{`12.5`, 0, true}, {`"abc"`, 0, true}, {`true`, 0, true}, {`{}`, 0, true},
	} {
		var id ID
		err := json.Unmarshal([]byte(tc.in), &id)
		if (err != nil) != tc.err || (!tc.err && id != tc.want) {
			t.Errorf("%s: got %d, %v", tc.in, id, err)
		}
	}
}

func TestDecodeTime(t *testing.T) {
	t.Parallel()
	ms := time.Date(2017, 1, 1, 22, 17, 59, 39e6, time.UTC)
	sec := time.Date(2017, 1, 1, 22, 17, 59, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Time
		err  bool
	}{
		{`"2017-01-01T22:17:59.039Z"`, ms, false},
		{`"2017-01-01T22:17:59.039+0000"`, ms, false},
		{`"2017-01-01T22:17:59.039+00:00"`, ms, false},
		{`"2017-01-01T22:17:59Z"`, sec, false},
		{`"2017-01-01T22:17:59+0000"`, sec, false},
		{`"2017-01-01T23:17:59.039+0100"`, ms, false},
		{`"2017-01-01T22:17:59.039"`, ms, false},
		{`"2017-01-01 22:17:59"`, sec, false},
		{`"2017-01-01T22:17:59.039123Z"`, ms.Add(123 * time.Microsecond), false},
		{`"2017-01-01"`, time.Date(2017, 1, 1, 0, 0, 0, 0, time.UTC), false},
		{`1483309079039`, ms, false},
		{`null`, time.Time{}, false}, {`""`, time.Time{}, false},
		{`"yesterday"`, time.Time{}, true}, {`true`, time.Time{}, true}, {`"2017-13-01T00:00:00Z"`, time.Time{}, true},
	} {
		var got Time
		err := json.Unmarshal([]byte(tc.in), &got)
		if (err != nil) != tc.err || (!tc.err && !got.Equal(tc.want)) {
			t.Errorf("%s: got %v, %v", tc.in, got, err)
		}
	}
	if s := FormatTime(ms); s != "2017-01-01T22:17:59.039Z" {
		t.Errorf("FormatTime: %s", s)
	}
	if b, _ := json.Marshal(Time{}); string(b) != "null" {
		t.Errorf("zero time: %s", b)
	}
}

func TestDecodeNumberAndBool(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]Number{`12.5`: 12.5, `"12.50"`: 12.5, `null`: 0, `""`: 0, `7`: 7} {
		var n Number
		if err := json.Unmarshal([]byte(in), &n); err != nil || n != want {
			t.Errorf("number %s: %v %v", in, n, err)
		}
	}
	for in, want := range map[string]Bool{`true`: true, `"true"`: true, `"TRUE"`: true, `1`: true, `false`: false, `null`: false, `"0"`: false} {
		var b Bool
		if err := json.Unmarshal([]byte(in), &b); err != nil || b != want {
			t.Errorf("bool %s: %v %v", in, b, err)
		}
	}
	var b Bool
	if err := json.Unmarshal([]byte(`"maybe"`), &b); err == nil {
		t.Error("bool maybe: want an error")
	}
}

func TestDecodeContactLiberal(t *testing.T) {
	t.Parallel()
	in := `{"id":"42","given_name":null,"family_name":"Ng","email_addresses":[{"email":"a@b.c","field":"EMAIL1"}],
	"tag_ids":[1,"2",null],"custom_fields":[{"id":"7","content":{"nested":true}},{"id":8,"content":null}],
	"owner_id":null,"email_opted_in":"true","date_created":"2020-05-01T10:00:00+0000",
	"last_updated":"2020-05-02T10:00:00.123Z","company":null,"unknown_future_field":[1,2,3]}`
	var c Contact
	if err := json.Unmarshal([]byte(in), &c); err != nil {
		t.Fatal(err)
	}
	if c.ID != 42 || c.GivenName != "" || c.FamilyName != "Ng" || len(c.TagIDs) != 3 || c.TagIDs[1] != 2 ||
		c.CustomFields[0].ID != 7 || string(c.CustomFields[0].Content) != `{"nested":true}` || !bool(c.EmailOptedIn) ||
		c.DateCreated.Hour() != 10 || c.LastUpdated.Nanosecond() != 123e6 || c.Company != nil || string(c.Raw) != in {
		t.Fatalf("decoded: %+v", c)
	}
}

func TestDecodeTagResults(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		`{"1":"SUCCESS","2":"DUPLICATE","3":"TAG_ID_NOT_FOUND"}`,
		`{"results":{"1":"SUCCESS","2":"DUPLICATE","3":"TAG_ID_NOT_FOUND"}}`,
		`[{"key":1,"value":"SUCCESS"},{"key":"2","value":"DUPLICATE"},{"key":3,"value":"TAG_ID_NOT_FOUND"}]`,
	} {
		var r TagResults
		if err := json.Unmarshal([]byte(in), &r); err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if len(r) != 3 || r[1] != TagSuccess || len(r.Failed()) != 1 || r.Failed()[3] != TagNotFound {
			t.Fatalf("%s: %v", in, r)
		}
	}
	var r TagResults
	if err := json.Unmarshal([]byte(`{"x":"SUCCESS"}`), &r); err == nil {
		t.Fatal("non-id key: want an error")
	}
}

func TestParseAPIError(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		status      int
		body        string
		code, msg   string
		refreshable bool
	}{
		{401, `{"fault":{"faultstring":"Invalid Access Token","detail":{"errorcode":"keymanagement.service.invalid_access_token"}}}`,
			"keymanagement.service.invalid_access_token", "Invalid Access Token", true},
		{401, `{"fault":{"faultstring":"Access Token expired","detail":{"errorcode":"keymanagement.service.access_token_expired"}}}`,
			"keymanagement.service.access_token_expired", "Access Token expired", true},
		{401, `{"fault":{"faultstring":"Invalid ApiKey","detail":{"errorcode":"oauth.v2.InvalidApiKey"}}}`,
			"oauth.v2.InvalidApiKey", "Invalid ApiKey", false},
		{429, `{"code":"429","message":"Quota Exceeded","status":"Request Throttled","details":null}`,
			"Request Throttled", "Quota Exceeded", false},
		{404, `{"code":404,"message":"Contact not found","status":"NOT_FOUND","details":[]}`, "NOT_FOUND", "Contact not found", false},
		{400, `{"message":"Input could not be converted to a valid request"}`, "", "Input could not be converted to a valid request", false},
		{502, `<html>Bad Gateway</html>`, "", "<html>Bad Gateway</html>", false},
		{503, ``, "", "Service Unavailable", false},
	} {
		e := parseAPIError(tc.status, []byte(tc.body))
		if e.Code != tc.code || e.Message != tc.msg || e.tokenRejected() != tc.refreshable || string(e.Body) != tc.body {
			t.Errorf("%d %s: %+v", tc.status, tc.body, e)
		}
	}
}

// TestNotFoundKinds: only the application's "no such record" body reads as ErrNotFound; the
// gateway's "no such route", a framework's default page, HTML or nothing is ErrRouteNotFound.
func TestNotFoundKinds(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		body   string
		record bool
	}{
		{`{"message":"Contact with ID 12 not found"}`, true},
		{`{"code":404,"message":"Contact not found","status":"NOT_FOUND","details":[]}`, true},
		{`{"fault":{"faultstring":"Unable to identify proxy for host: api and url: /crm/rest/v9/contacts/1","detail":{"errorcode":"messaging.adaptors.http.flow.ApplicationNotFound"}}}`, false},
		{`{"timestamp":"2026-01-01T00:00:00.000+00:00","status":404,"error":"Not Found","message":"No message available","path":"/crm/rest/v1/contactz/1"}`, false},
		{`<html><body>Not Found</body></html>`, false},
		{`404 page not found`, false},
		{``, false},
		{`{"message":""}`, false},
	} {
		e := parseAPIError(404, []byte(tc.body))
		if errors.Is(e, ErrNotFound) != tc.record || errors.Is(e, ErrRouteNotFound) == tc.record {
			t.Errorf("%q: record %v, route %v; want record %v", tc.body, errors.Is(e, ErrNotFound), errors.Is(e, ErrRouteNotFound), tc.record)
		}
	}
	if e := parseAPIError(400, []byte(``)); errors.Is(e, ErrRouteNotFound) || errors.Is(e, ErrNotFound) {
		t.Error("a 400 is neither kind of 404")
	}
}

// FuzzDecoders feeds outside input to every liberal decoder: none may panic, and whatever an
// id or time accepts must survive a round trip.
func FuzzDecoders(f *testing.F) {
	for _, s := range []string{`12`, `"12"`, `null`, `"2017-01-01T22:17:59.039+0000"`, `1483309079039`,
		`{"id":"1","last_updated":"2020-01-01T00:00:00Z","tag_ids":["1",2]}`, `{"1":"SUCCESS"}`,
		`[{"key":1,"value":"SUCCESS"}]`, `{"fault":{"faultstring":"x","detail":{"errorcode":"y"}}}`, `"12.50"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var id ID
		if json.Unmarshal(b, &id) == nil {
			var back ID
			out, _ := json.Marshal(id)
			if err := json.Unmarshal(out, &back); err != nil || back != id {
				t.Fatalf("id %s -> %d -> %s", b, id, out)
			}
		}
		var tm Time
		if json.Unmarshal(b, &tm) == nil && !tm.IsZero() && tm.Year() > 0 && tm.Year() < 10000 {
			var back Time
			out, _ := json.Marshal(tm)
			if err := json.Unmarshal(out, &back); err != nil || !back.Equal(tm.Time) {
				t.Fatalf("time %s -> %v -> %s -> %v (%v)", b, tm, out, back, err)
			}
		}
		var n Number
		_ = json.Unmarshal(b, &n)
		var bo Bool
		_ = json.Unmarshal(b, &bo)
		var r TagResults
		_ = json.Unmarshal(b, &r)
		for _, v := range []any{&Contact{}, &Order{}, &Subscription{}, &Hook{}, &Tag{}, &ContactTag{}, &Payment{}} {
			_ = json.Unmarshal(b, v)
		}
		_ = parseAPIError(400, b)
		_ = parseWindows(map[string][]string{"x-keap-tenant-throttle-available": {string(b)},
			"x-keap-tenant-throttle-limit": {string(b)}, "x-keap-tenant-throttle-time-unit": {string(b)}}, "x-keap-tenant-throttle-")
	})
}
