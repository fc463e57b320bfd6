package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Keap holds strings PostgreSQL refuses: text and jsonb cannot hold the NUL character (\u0000
// in JSON, SQLSTATE 22P05), bytes that are not UTF-8 (22021) or a lone UTF-16 surrogate escape
// (22P02), and jsonb's numeric cannot hold a number with more than 131072 digits before the point
// or 16383 after it (22003). Such a record used to fail its apply, then its dead letter (the
// raw payload goes into jsonb too), and so its whole batch. Before a record reaches PostgreSQL it
// is made storable here, by one rule (README, "Keap → Postgres"):
//
//   - NUL is removed from every string and key;
//   - an invalid UTF-8 byte and a lone surrogate escape become U+FFFD;
//   - a number numeric cannot hold becomes a JSON string of the same digits;
//
// and the record is applied as rewritten. Because the stored values then differ from Keap's, the
// record is also parked as a dead letter whose payload keeps the original, escaped (see
// escapeOriginal), so nothing Keap sent is lost and a person sees what was changed.

// Limits of PostgreSQL's numeric type (src/backend/utils/adt/numeric.c: NUMERIC_MAX_DISPLAY_SCALE
// and the weight limit), with a margin.
const (
	maxIntegerDigits  = 131000
	maxFractionDigits = 16000
)

// alterations counts what storable changed in one record.
type alterations struct {
	nul, invalidUTF8, surrogates, numbers int
}

func (a alterations) any() bool { return a != alterations{} }

func (a alterations) String() string {
	var parts []string
	for _, p := range []struct {
		n    int
		what string
	}{{a.nul, "NUL characters removed"}, {a.invalidUTF8, "invalid UTF-8 bytes replaced with U+FFFD"},
		{a.surrogates, "lone surrogate escapes replaced with U+FFFD"}, {a.numbers, "numbers beyond PostgreSQL's numeric kept as strings"}} {
		if p.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", p.n, p.what))
		}
	}
	return strings.Join(parts, ", ")
}

// errNotJSON marks a record that is not JSON at all: nothing can be applied, only parked.
var errNotJSON = errors.New("record is not valid JSON")

// storable rewrites a Keap record so PostgreSQL's jsonb accepts it, by the rule above. The input
// is returned unchanged (same slice) when nothing needed changing.
func storable(raw []byte) ([]byte, alterations, error) {
	var a alterations
	if !json.Valid(raw) {
		return nil, a, errNotJSON
	}
	if !needsRewrite(raw) {
		return raw, a, nil
	}
	out := make([]byte, 0, len(raw))
	for i := 0; i < len(raw); {
		c := raw[i]
		switch {
		case c == '"':
			end, s := rewriteString(raw, i, &a)
			out = append(out, s...)
			i = end
		case c == '-' || (c >= '0' && c <= '9'):
			// Outside strings only numbers hold digits or '-' (true, false, null have none).
			end := numberEnd(raw, i)
			if num := raw[i:end]; numericHolds(num) {
				out = append(out, num...)
			} else {
				a.numbers++
				out = append(out, '"')
				out = append(out, num...)
				out = append(out, '"')
			}
			i = end
		default:
			out = append(out, c)
			i++
		}
	}
	if !a.any() {
		return raw, a, nil
	}
	return out, a, nil
}

// needsRewrite is a cheap pre-check: most records hold only UTF-8, no \u escapes and ordinary
// numbers, and are stored as they came without a copy.
func needsRewrite(raw []byte) bool {
	if !utf8.Valid(raw) || bytes.Contains(raw, []byte(`\u`)) {
		return true
	}
	for i := 0; i < len(raw); {
		c := raw[i]
		switch {
		case c == '"':
			i++
			for i < len(raw) && raw[i] != '"' {
				if raw[i] == '\\' {
					i++
				}
				i++
			}
			i++
		case c == '-' || (c >= '0' && c <= '9'):
			end := numberEnd(raw, i)
			if !numericHolds(raw[i:end]) {
				return true
			}
			i = end
		default:
			i++
		}
	}
	return false
}

// numberEnd returns the index after the JSON number starting at raw[i].
func numberEnd(raw []byte, i int) int {
	end := i + 1
	for end < len(raw) && strings.IndexByte("+-.eE0123456789", raw[end]) >= 0 {
		end++
	}
	return end
}

// rewriteString copies the JSON string starting at raw[start] (a '"'), applying the rule, and
// returns the index after its closing quote. raw is valid JSON.
func rewriteString(raw []byte, start int, a *alterations) (int, []byte) {
	out := []byte{'"'}
	i := start + 1
	for i < len(raw) {
		c := raw[i]
		switch {
		case c == '"':
			return i + 1, append(out, '"')
		case c == '\\' && raw[i+1] == 'u':
			r := hex4(raw[i+2 : i+6])
			switch {
			case r == 0:
				a.nul++
				i += 6
			case utf16.IsSurrogate(r) && r < 0xDC00 && i+12 <= len(raw) && raw[i+6] == '\\' && raw[i+7] == 'u' &&
				utf16.DecodeRune(r, hex4(raw[i+8:i+12])) != utf8.RuneError:
				out = append(out, raw[i:i+12]...) // a valid pair
				i += 12
			case utf16.IsSurrogate(r):
				a.surrogates++
				out = append(out, `\ufffd`...)
				i += 6
			default:
				out = append(out, raw[i:i+6]...)
				i += 6
			}
		case c == '\\':
			out = append(out, raw[i:i+2]...)
			i += 2
		case c < utf8.RuneSelf:
			out = append(out, c)
			i++
		default:
			r, size := utf8.DecodeRune(raw[i:])
			if r == utf8.RuneError && size == 1 {
				a.invalidUTF8++
				out = append(out, "\uFFFD"...)
			} else {
				out = append(out, raw[i:i+size]...)
			}
			i += size
		}
	}
	return i, out // unreachable for valid JSON
}

func hex4(b []byte) rune {
	n, _ := strconv.ParseUint(string(b), 16, 32)
	return rune(n)
}

// numericHolds reports whether PostgreSQL's numeric can hold the JSON number num: its digits
// before the point and after it, once the exponent has moved the point, stay within numeric's
// limits.
func numericHolds(num []byte) bool {
	s := string(bytes.TrimPrefix(num, []byte("-")))
	mantissa, exp := s, 0
	if k := strings.IndexAny(s, "eE"); k >= 0 {
		e, err := strconv.Atoi(s[k+1:])
		if err != nil || e > 1<<30 || e < -1<<30 {
			return false // an exponent too long to read is beyond any limit
		}
		mantissa, exp = s[:k], e
	}
	intPart, frac, _ := strings.Cut(mantissa, ".")
	intPart = strings.TrimLeft(intPart, "0")
	frac = strings.TrimRight(frac, "0")
	if intPart == "" && frac == "" {
		return true // zero, whatever its exponent
	}
	intDigits, fracDigits := len(intPart)+exp, len(frac)-exp
	return intDigits <= maxIntegerDigits && fracDigits <= maxFractionDigits
}

// escapeOriginal renders a record's bytes as text PostgreSQL can always store: valid UTF-8 is
// kept as it is (a JSON \u0000 escape stays the six characters \u0000), and each byte that is not
// UTF-8, or is NUL, is written \xNN. Valid JSON never holds \x, so the original bytes can be
// recovered exactly.
func escapeOriginal(raw []byte) string {
	var b strings.Builder
	b.Grow(len(raw))
	for i := 0; i < len(raw); {
		r, size := utf8.DecodeRune(raw[i:])
		if (r == utf8.RuneError && size == 1) || r == 0 {
			fmt.Fprintf(&b, `\x%02x`, raw[i])
			i++
			continue
		}
		b.Write(raw[i : i+size])
		i += size
	}
	return b.String()
}

// storableText makes an error message storable in a text column: Keap's messages and
// PostgreSQL's may quote the offending bytes.
func storableText(s string) string {
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "")
}
