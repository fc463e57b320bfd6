package ingest

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestStorableRule(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name, in, want string
		alt            alterations
	}{
		{"plain record is kept as is", `{"id": 1, "given_name": "Zoë", "total": 12.50, "n": -3e2}`, `{"id": 1, "given_name": "Zoë", "total": 12.50, "n": -3e2}`, alterations{}},
		{"NUL removed", `{"given_name": "Ann\u0000Lee"}`, `{"given_name": "AnnLee"}`, alterations{nul: 1}},
		{"NUL in a key", `{"a\u0000b": 1}`, `{"ab": 1}`, alterations{nul: 1}},
		{"escaped backslash before u0000 is text", `{"s": "\\u0000"}`, `{"s": "\\u0000"}`, alterations{}},
		{"invalid UTF-8 replaced", "{\"s\": \"a\xffb\xc3\"}", "{\"s\": \"a\uFFFDb\uFFFD\"}", alterations{invalidUTF8: 2}},
		{"lone surrogates replaced", `{"s": "\ud800x\udc00"}`, `{"s": "\ufffdx\ufffd"}`, alterations{surrogates: 2}},
		{"a surrogate pair is kept", `{"s": "\ud83d\ude00"}`, `{"s": "\ud83d\ude00"}`, alterations{}},
		{"other escapes kept", `{"s": "\u00e9\n\"\\"}`, `{"s": "\u00e9\n\"\\"}`, alterations{}},
		{"number beyond numeric kept as string", `{"n": 1e999999, "m": 1.5}`, `{"n": "1e999999", "m": 1.5}`, alterations{numbers: 1}},
		{"tiny number beyond numeric's scale", `[-1e-20000]`, `["-1e-20000"]`, alterations{numbers: 1}},
		{"big but storable number kept", `[1e400, 0e999, 12345678901234567890.5]`, `[1e400, 0e999, 12345678901234567890.5]`, alterations{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, alt, err := storable([]byte(c.in))
			if err != nil || string(got) != c.want || alt != c.alt {
				t.Fatalf("storable(%q) = %q, %+v, %v; want %q, %+v", c.in, got, alt, err, c.want, c.alt)
			}
		})
	}
	if _, _, err := storable([]byte(`{"a": `)); err == nil {
		t.Fatal("a record that is not JSON was called storable")
	}
}

func TestEscapeOriginalKeepsEveryByte(t *testing.T) {
	t.Parallel()
	in := []byte("{\"s\": \"a\xff\\u0000\"}\x00")
	got := escapeOriginal(in)
	if got != `{"s": "a\xff\u0000"}\x00` {
		t.Fatalf("escaped %q", got)
	}
	if back := unescapeOriginal(got); !bytes.Equal(back, in) {
		t.Fatalf("round trip: %q", back)
	}
}

// FuzzStorable: whatever JSON Keap sends, storable's output is JSON PostgreSQL can hold (UTF-8,
// no \u0000, no lone surrogate, numbers numeric can hold) with the same shape, it changes nothing
// when nothing needs it, and the escaped original gives back the exact bytes.
func FuzzStorable(f *testing.F) {
	for _, s := range []string{`{"a": "b"}`, `{"a": "\u0000"}`, "{\"a\": \"\xff\"}", `["\ud800", "\udfff\ud800"]`,
		`{"n": 1e99999999999999999999}`, `{"n": -0.000e-5}`, `[[[["deep"]]]]`, `"\\\u0000"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if !utf8.ValidString(escapeOriginal(in)) || strings.Contains(escapeOriginal(in), "\x00") {
			t.Fatalf("escaped original is not storable text: %q", in)
		}
		out, alt, err := storable(in)
		if !json.Valid(in) {
			if err == nil {
				t.Fatal("not JSON, yet storable")
			}
			return
		}
		if back := unescapeOriginal(escapeOriginal(in)); !bytes.Equal(back, in) {
			t.Fatalf("escaped original does not round trip: %q", in) // JSON never holds \x
		}
		if err != nil || !json.Valid(out) || !utf8.Valid(out) {
			t.Fatalf("storable(%q) = %q, %v", in, out, err)
		}
		if !alt.any() && !bytes.Equal(in, out) {
			t.Fatalf("changed %q to %q without saying so", in, out)
		}
		if needsRewrite(out) {
			if again, alt2, _ := storable(out); alt2.any() {
				t.Fatalf("output still needs rewriting (%s): %q -> %q", alt2, out, again)
			}
		}
		var v any
		dec := json.NewDecoder(bytes.NewReader(out))
		dec.UseNumber()
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("output does not decode: %v", err)
		}
		if strings.Contains(string(out), "\x00") {
			t.Fatalf("raw NUL in %q", out)
		}
	})
}

// unescapeOriginal inverts escapeOriginal (tests only: the letter is for people to read).
func unescapeOriginal(s string) []byte {
	var out []byte
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && s[i+1] == 'x' {
			var b byte
			for _, h := range s[i+2 : i+4] {
				b = b<<4 | byte(strings.IndexRune("0123456789abcdef", h))
			}
			out = append(out, b)
			i += 3
			continue
		}
		out = append(out, s[i])
	}
	return out
}
