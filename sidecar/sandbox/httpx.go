package sandbox

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// apiError is an error with the HTTP status and body Keap would send. Handlers return errors;
// one renderer writes them (see writeError).
type apiError struct {
	status int
	body   any
}

func (e *apiError) Error() string { return fmt.Sprintf("%d %v", e.status, e.body) }

// v1 application errors are {"message": "..."} on the wire (FACTS.md §3), not the
// Throwable dump [V1] declares.
func v1Error(status int, msg string) *apiError {
	return &apiError{status: status, body: map[string]string{"message": msg}}
}

func badRequest(msg string) error { return v1Error(http.StatusBadRequest, msg) }
func notFound(msg string) error   { return v1Error(http.StatusNotFound, msg) }

// v2Error is the [V2] Error schema.
func v2Error(status int, msg string) *apiError {
	return &apiError{status: status, body: map[string]any{
		"code": status, "message": msg, "status": strings.ToUpper(strings.ReplaceAll(http.StatusText(status), " ", "_")),
	}}
}

type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// handle adapts a handler that returns errors to net/http. Unknown errors become 500s with a
// message and are logged by the caller's middleware through the request log.
func handle(fn handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := fn(w, r); err != nil {
			writeError(w, r, err)
		}
	}
}

func writeError(w http.ResponseWriter, r *http.Request, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		ae = v1Error(http.StatusInternalServerError, "Internal Server Error")
	}
	if strings.HasPrefix(r.URL.Path, "/crm/rest/v2/") {
		if m, ok := ae.body.(map[string]string); ok {
			ae = v2Error(ae.status, m["message"])
		}
	}
	writeJSON(w, ae.status, ae.body)
}

// writeJSON encodes v before sending the status, so a value that cannot be encoded (a NaN or an
// infinity) answers a 500 with Keap's error body instead of a 2xx with an empty body, which a
// client could take for an empty record.
func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // Keap's next/previous URLs carry raw '&'
	if err := enc.Encode(v); err != nil {
		buf.Reset()
		status = http.StatusInternalServerError
		_ = enc.Encode(map[string]string{"message": "Internal Server Error"})
	}
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// decodeBody reads a JSON object with numbers kept exact (ids are int64).
func decodeBody(r *http.Request, v any) error {
	data, err := io.ReadAll(io.LimitReader(r.Body, 16<<20))
	if err != nil {
		return badRequest("Input could not be converted to a valid request")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return badRequest("Input could not be converted to a valid request")
	}
	return nil
}

// page is limit/offset paging. Keap's default and effective maximum page size is 1000
// (FACTS.md §4); larger limits are clamped, not refused.
type page struct{ limit, offset int }

func parsePage(q url.Values) (page, error) {
	p := page{limit: 1000}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return p, badRequest("Invalid limit: " + v)
		}
		if n > 0 && n < 1000 {
			p.limit = n
		}
	}
	if v := q.Get("offset"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return p, badRequest("Invalid offset: " + v)
		}
		p.offset = n
	}
	return p, nil
}

func (p page) bounds(n int) (lo, hi int) {
	lo = min(p.offset, n)
	hi = min(lo+p.limit, n)
	return lo, hi
}

// links builds Keap's absolute next/previous URLs, keeping the caller's other parameters.
// next is present only while records remain after this page; previous only past offset 0.
func (p page) links(base string, r *http.Request, returned, total int) (next, previous string) {
	build := func(offset int) string {
		q := r.URL.Query()
		q.Set("limit", strconv.Itoa(p.limit))
		q.Set("offset", strconv.Itoa(offset))
		return base + r.URL.Path + "?" + q.Encode()
	}
	if p.offset+returned < total {
		next = build(p.offset + p.limit)
	}
	if p.offset > 0 {
		previous = build(max(0, p.offset-p.limit))
	}
	return next, previous
}

// listValues reads a list parameter given either repeated (?a=1&a=2) or comma-joined (?a=1,2);
// Keap accepts both.
func listValues(q url.Values, name string) []string {
	var out []string
	for _, v := range q[name] {
		for _, part := range strings.Split(v, ",") {
			if part = strings.TrimSpace(part); part != "" {
				out = append(out, part)
			}
		}
	}
	return out
}

func parseIDs(values []string) ([]int64, error) {
	out := make([]int64, 0, len(values))
	for _, v := range values {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, badRequest("Invalid id: " + v)
		}
		out = append(out, id)
	}
	return out, nil
}

func pathID(r *http.Request, name string) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue(name), 10, 64)
	if err != nil {
		return 0, badRequest("Invalid " + name + ": " + r.PathValue(name))
	}
	return id, nil
}
