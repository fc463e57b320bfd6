package keap

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// APIError is a response Keap refused. Message is Keap's own text, from whichever body shape it
// used: Apigee's {"fault":{"faultstring","detail":{"errorcode"}}} (gateway errors: 401, 429),
// v2's {code,message,status} or v1's {"message"} (FACTS.md §3).
type APIError struct {
	Status   int    // HTTP status
	Code     string // fault errorcode (e.g. keymanagement.service.invalid_access_token) or v2 status
	Message  string // Keap's message, or the status text when the body had none
	Body     []byte // the raw body, for dead letters
	Method   string
	Endpoint string // route template, e.g. /v1/contacts/{id}
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("keap %s %s: %d", e.Method, e.Endpoint, e.Status)
	if e.Code != "" {
		s += " " + e.Code
	}
	return s + ": " + e.Message
}

// Sentinels for errors.Is on an *APIError (by status) and for the client's own refusals.
var (
	ErrUnauthorized = errors.New("keap: credentials rejected (revoked, expired or wrong)")
	ErrForbidden    = errors.New("keap: forbidden")
	ErrNotFound     = errors.New("keap: not found")
	ErrRateLimited  = errors.New("keap: rate limited")
	ErrBadRequest   = errors.New("keap: bad request")
	ErrServer       = errors.New("keap: server error")
	// ErrBadResponse matches a *ResponseError: a 2xx whose body is empty or does not decode.
	ErrBadResponse = errors.New("keap: unusable response")
)

// Is lets callers write errors.Is(err, keap.ErrNotFound) whatever the message.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrUnauthorized:
		return e.Status == http.StatusUnauthorized
	case ErrForbidden:
		return e.Status == http.StatusForbidden
	case ErrNotFound:
		return e.Status == http.StatusNotFound
	case ErrRateLimited:
		return e.Status == http.StatusTooManyRequests
	case ErrBadRequest:
		return e.Status == http.StatusBadRequest || e.Status == http.StatusUnprocessableEntity
	case ErrServer:
		return e.Status >= 500
	}
	return false
}

// ResponseError is a 2xx answer that carries no usable value: an empty body, null, or JSON that
// does not decode into what the call returns. Keap accepted the call, so it is not retried; a
// caller fetching one record treats it as that record's failure (ingest parks it by id).
type ResponseError struct {
	Method   string
	Endpoint string
	Status   int
	Body     []byte // as received, for dead letters
	Err      error
}

func (e *ResponseError) Error() string {
	return fmt.Sprintf("keap %s %s: %d answer unusable: %v", e.Method, e.Endpoint, e.Status, e.Err)
}

func (e *ResponseError) Unwrap() error { return e.Err }

// Is lets callers write errors.Is(err, keap.ErrBadResponse).
func (e *ResponseError) Is(target error) bool { return target == ErrBadResponse }

// ItemError is one item of a list page that does not decode. A listing yields it in place of the
// item and goes on if the caller does (see Page.Bad). ID is the item's id when one could be read.
type ItemError struct {
	Endpoint string
	ID       ID
	Raw      json.RawMessage // the item as Keap listed it
	Err      error
}

func newItemError(r request, raw json.RawMessage, err error) *ItemError {
	var idOnly struct {
		ID json.RawMessage `json:"id"`
	}
	e := &ItemError{Endpoint: r.endpoint, Raw: raw, Err: err}
	if json.Unmarshal(raw, &idOnly) == nil {
		_ = e.ID.UnmarshalJSON(idOnly.ID) // left 0 when the id itself is what fails
	}
	return e
}

func (e *ItemError) Error() string {
	return fmt.Sprintf("keap %s: item %d does not decode: %v", e.Endpoint, e.ID, e.Err)
}

func (e *ItemError) Unwrap() error { return e.Err }

// Is lets callers write errors.Is(err, keap.ErrBadResponse).
func (e *ItemError) Is(target error) bool { return target == ErrBadResponse }

// tokenRejected reports a 401 that says the access token itself is bad, the case a refresh
// can fix. A wrong personal key (oauth.v2.InvalidApiKey) cannot be refreshed.
func (e *APIError) tokenRejected() bool {
	if e.Status != http.StatusUnauthorized {
		return false
	}
	switch e.Code {
	case "keymanagement.service.invalid_access_token", "keymanagement.service.access_token_expired",
		"oauth.v2.InvalidAccessToken":
		return true
	}
	return false
}

// parseAPIError reads whichever error shape Keap sent. Unknown shapes keep the body and use
// the status text, so nothing Keap said is lost.
func parseAPIError(status int, body []byte) *APIError {
	e := &APIError{Status: status, Body: body}
	var w struct {
		Fault *struct {
			FaultString string `json:"faultstring"`
			Detail      struct {
				ErrorCode string `json:"errorcode"`
			} `json:"detail"`
		} `json:"fault"`
		Message          json.RawMessage `json:"message"`
		Code             json.RawMessage `json:"code"`
		Status           json.RawMessage `json:"status"`
		Error            string          `json:"error"`
		ErrorDescription string          `json:"error_description"`
	}
	if json.Unmarshal(body, &w) == nil {
		switch {
		case w.Fault != nil:
			e.Message, e.Code = w.Fault.FaultString, w.Fault.Detail.ErrorCode
		case len(w.Message) > 0:
			e.Message = looseString(w.Message)
			if s := looseString(w.Status); s != "" && !isNumber(s) {
				e.Code = s
			}
		case w.Error != "":
			e.Message, e.Code = w.ErrorDescription, w.Error
		}
	}
	if e.Message == "" {
		e.Message = strings.TrimSpace(string(body))
		if len(e.Message) > 200 || e.Message == "" {
			e.Message = http.StatusText(status)
		}
	}
	return e
}

// looseString renders a JSON string or number as text; anything else is empty.
func looseString(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String()
	}
	return ""
}

func isNumber(s string) bool {
	_, err := strconv.ParseFloat(s, 64)
	return err == nil
}
