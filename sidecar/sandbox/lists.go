package sandbox

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
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
