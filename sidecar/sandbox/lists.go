package sandbox

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
)

func marshal(v any) ([]byte, error) { return json.Marshal(v) }

// writeList writes a v1 list envelope {key:[...],count,next,previous}, assembling the items from
// pre-rendered JSON so big pages cost little more than a copy.
func writeList[T any](w http.ResponseWriter, key string, items []T, total int, next, prev string, render func(T) ([]byte, error)) error {
	var buf bytes.Buffer
	buf.Grow(len(items) * 512)
	buf.WriteString(`{"` + key + `":[`)
	for i, it := range items {
		b, err := render(it)
		if err != nil {
			return err
		}
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.Write(b)
	}
	buf.WriteString(`],"count":` + strconv.Itoa(total))
	for _, l := range [][2]string{{"next", next}, {"previous", prev}} {
		if l[1] != "" {
			buf.WriteString(`,"` + l[0] + `":`)
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			_ = enc.Encode(l[1]) // adds a newline, which is JSON whitespace
		}
	}
	buf.WriteString("}\n")
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(http.StatusOK)
	_, err := w.Write(buf.Bytes())
	return err
}

// timeParam parses since/until. Unparseable dates are a 400, not an ignored filter.
func timeParam(v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	t, err := parseKeapTime(v)
	if err != nil {
		return time.Time{}, badRequest("Invalid date: " + v)
	}
	return t, nil
}

// v2Page reads [V2]'s page_size (at most 1000) and page_token (an opaque offset here).
func v2Page(q map[string][]string) (size, offset int, err error) {
	size = 1000
	if v := first(q["page_size"]); v != "" {
		n, perr := strconv.Atoi(v)
		if perr != nil || n < 0 || n > 1000 {
			return 0, 0, badRequest("Invalid page_size: " + v)
		}
		if n > 0 {
			size = n
		}
	}
	if v := first(q["page_token"]); v != "" {
		raw, derr := base64.RawURLEncoding.DecodeString(v)
		if derr == nil {
			offset, derr = strconv.Atoi(strings.TrimPrefix(string(raw), "o:"))
		}
		if derr != nil || offset < 0 {
			return 0, 0, badRequest("Invalid page_token")
		}
	}
	return size, offset, nil
}

// v2NextToken is the token of the page starting at offset.
func v2NextToken(offset int) string {
	return base64.RawURLEncoding.EncodeToString([]byte("o:" + strconv.Itoa(offset)))
}

// writeV2Page writes one page of all, filtered and ordered already, as [V2] lists a collection:
// the page's items under key, and a next_page_token while more follow.
func writeV2Page[T any](w http.ResponseWriter, key string, all []T, size, offset int, render func(T) map[string]any) {
	lo, hi := page{limit: size, offset: offset}.bounds(len(all))
	items := make([]map[string]any, 0, hi-lo)
	for _, x := range all[lo:hi] {
		items = append(items, render(x))
	}
	out := map[string]any{key: items}
	if hi < len(all) {
		out["next_page_token"] = v2NextToken(hi)
	}
	writeJSON(w, http.StatusOK, out)
}
