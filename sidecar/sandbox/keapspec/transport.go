package keapspec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// Transport is an http.RoundTripper that checks every Keap REST exchange passing through it.
// Put it under a client in tests: the client's requests and the server's responses are both
// checked against Keap's documents, so client and sandbox cannot drift together.
type Transport struct {
	Next      http.RoundTripper
	Validator *Validator
	// Report receives every violation; tests pass t.Errorf-like functions. Paths outside the
	// REST APIs (/token, /app/oauth, /_sandbox) are not reported.
	Report func(err error)
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	next := t.Next
	if next == nil {
		next = http.DefaultTransport
	}
	var reqBody []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		_ = req.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("read request body: %w", err)
		}
		reqBody = b
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(bytes.NewReader(b))
	}
	resp, err := next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("read response body: %w", err)
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	verr := t.Validator.ValidateExchange(req.Context(), Exchange{
		Request: req, RequestBody: reqBody, Status: resp.StatusCode, Header: resp.Header, Body: body,
	})
	if verr != nil && !errors.Is(verr, ErrNotKeapAPI) && t.Report != nil {
		t.Report(verr)
	}
	return resp, nil
}
