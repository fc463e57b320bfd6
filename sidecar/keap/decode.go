package keap

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Real Keap is looser than its documents: v1 ids are numbers, v2 ids are strings, some v1
// fields are typed as strings ("contact_id" on orders), timestamps come with Z or +0000, with or
// without milliseconds, and absent values may be null. The types below accept all of these so
// one odd record never fails a page.

var jsonNull = []byte("null")

// unquote returns the text of a JSON string, or the literal itself for numbers and booleans.
// ok is false for null.
func unquote(b []byte) (s string, quoted, ok bool, err error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || bytes.Equal(b, jsonNull) {
		return "", false, false, nil
	}
	if b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return "", true, false, err
		}
		return strings.TrimSpace(s), true, true, nil
	}
	return string(b), false, true, nil
}

// ID is a Keap id: an int64 on the wire as a number (v1) or a string (v2). Zero means absent.
type ID int64

// UnmarshalJSON accepts 12, "12", 12.0, "" and null.
func (id *ID) UnmarshalJSON(b []byte) error {
	s, _, ok, err := unquote(b)
	if err != nil || !ok || s == "" {
		*id = 0
		return err
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		f, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil || f != float64(int64(f)) {
			return fmt.Errorf("keap id %q: not an integer", s)
		}
		n = int64(f)
	}
	*id = ID(n)
	return nil
}

func (id ID) String() string { return strconv.FormatInt(int64(id), 10) }

// Time is a Keap timestamp. It keeps full precision (law 3: Keap's clock orders versions).
type Time struct{ time.Time }

// timeLayouts are tried in order. Go parses a fractional second after the seconds field even
// when the layout has none, so each layout covers "with or without millis".
var timeLayouts = []string{
	time.RFC3339,                // 2017-01-01T22:17:59.039Z, +00:00
	"2006-01-02T15:04:05Z0700",  // +0000
	"2006-01-02T15:04:05",       // no zone: Keap means UTC
	"2006-01-02 15:04:05Z07:00", // space instead of T
	"2006-01-02 15:04:05Z0700",
	"2006-01-02 15:04:05",
	"2006-01-02", // dates (birthday, start_date)
}

// ParseTime parses any timestamp form Keap is known to send.
func ParseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("keap time %q: unrecognized format", s)
}

// UnmarshalJSON accepts the string forms of ParseTime, epoch milliseconds, "" and null.
func (t *Time) UnmarshalJSON(b []byte) error {
	s, quoted, ok, err := unquote(b)
	if err != nil || !ok || s == "" {
		t.Time = time.Time{}
		return err
	}
	if !quoted {
		ms, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("keap time %s: want a string or epoch milliseconds", s)
		}
		t.Time = time.UnixMilli(ms).UTC()
		return nil
	}
	parsed, err := ParseTime(s)
	if err != nil {
		return err
	}
	t.Time = parsed
	return nil
}

// MarshalJSON writes RFC 3339 in UTC with full precision, or null when zero.
func (t Time) MarshalJSON() ([]byte, error) {
	if t.IsZero() {
		return jsonNull, nil
	}
	return json.Marshal(FormatTime(t.Time))
}

// FormatTime renders a time as Keap's since/until parameters and bodies expect: UTC, Z,
// milliseconds (Keap's precision) unless the time carries finer digits.
func FormatTime(t time.Time) string {
	t = t.UTC()
	if t.Nanosecond()%int(time.Millisecond) == 0 {
		return t.Format("2006-01-02T15:04:05.000Z")
	}
	return t.Format(time.RFC3339Nano)
}

// Number is an amount Keap sends as a number or as a string ("12.50").
type Number float64

// UnmarshalJSON accepts 12.5, "12.5", "" and null.
func (n *Number) UnmarshalJSON(b []byte) error {
	s, _, ok, err := unquote(b)
	if err != nil || !ok || s == "" {
		*n = 0
		return err
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return fmt.Errorf("keap number %q: %w", s, err)
	}
	*n = Number(f)
	return nil
}

// Bool is a flag Keap may send as true, "true", 1 or null (false).
type Bool bool

// UnmarshalJSON accepts JSON booleans, their string forms, 0/1 and null.
func (v *Bool) UnmarshalJSON(b []byte) error {
	s, _, ok, err := unquote(b)
	if err != nil || !ok || s == "" {
		*v = false
		return err
	}
	p, err := strconv.ParseBool(strings.ToLower(s))
	if err != nil {
		return fmt.Errorf("keap bool %q: %w", s, err)
	}
	*v = Bool(p)
	return nil
}

// withRaw decodes b into v (a pointer to the "plain" twin of a model, without its methods)
// and returns a private copy of b for the model's Raw field.
func withRaw(b []byte, v any) (json.RawMessage, error) {
	if err := json.Unmarshal(b, v); err != nil {
		return nil, err
	}
	return append(json.RawMessage(nil), b...), nil
}
