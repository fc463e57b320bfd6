package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/keapsync/keapsync/sidecar/keap"
)

// oneLine is how a command's error reaches the person: one line that names the setting or
// argument at fault, without SQLSTATE or driver noise. detail is the whole story, shown with
// --log-level debug.
func oneLine(err error) (line, detail string) {
	detail = err.Error()
	if ce, ok := errors.AsType[*connectError](err); ok {
		detail = ce.err.Error()
	}
	if pe, ok := errors.AsType[*pgconn.PgError](err); ok {
		detail = fmt.Sprintf("%s (SQLSTATE %s)", detail, pe.Code)
		if pe.Detail != "" {
			detail += "; detail: " + pe.Detail
		}
		if pe.Hint != "" {
			detail += "; hint: " + pe.Hint
		}
	}
	line = strings.ReplaceAll(plainPg(err, err.Error()), "\n", " ")
	if api, ok := errors.AsType[*keap.APIError](err); ok && api.Status == 404 && !json.Valid(api.Body) {
		// Keap answers 404 for a missing record with JSON; anything else is not Keap's API.
		line += " (this is not Keap's API: check KEAP_API_URL, the base to which /v1/contacts is appended, " +
			"e.g. https://api.infusionsoft.com/crm/rest)"
	}
	return line, detail
}

// plainPg replaces a PostgreSQL error's "ERROR: … (SQLSTATE …)" in s by its message alone.
func plainPg(err error, s string) string {
	pe, ok := errors.AsType[*pgconn.PgError](err)
	if !ok {
		return s
	}
	return strings.Replace(s, pe.Error(), strings.TrimPrefix(pe.Message, "keapsync: "), 1)
}

// connectError is a failed connection to DATABASE_URL, said in one line: the server's refusal
// (a wrong password, an unknown database) before any TLS fallback noise, else the network's.
type connectError struct{ err error }

func (e *connectError) Error() string {
	msg := e.err.Error()
	if pe, ok := errors.AsType[*pgconn.PgError](e.err); ok {
		msg = pe.Message
	} else if ne, ok := errors.AsType[*net.OpError](e.err); ok {
		msg = ne.Error()
	} else if i := strings.LastIndex(msg, "\n"); i >= 0 {
		msg = strings.TrimSpace(msg[i+1:])
	}
	return "connect to database (DATABASE_URL): " + msg
}

func (e *connectError) Unwrap() error { return e.err }

// notFound turns the SQL functions' "no such row" (SQLSTATE P0002) into a line that says which
// list shows the ids.
func notFound(err error, what string, id int64, list string) error {
	if pe, ok := errors.AsType[*pgconn.PgError](err); ok && pe.Code == "P0002" {
		return fmt.Errorf("no %s %d (%s lists them)", what, id, list)
	}
	return fmt.Errorf("%s %d: %w", what, id, err)
}
