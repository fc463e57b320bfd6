package dashboard

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// asUser runs fn in a transaction as the signed-in person: role authenticated and the verified
// claims as request.jwt.claims, both transaction-local (safe through transaction poolers). Row
// level security then decides every row fn sees or changes; Go never filters for access.
func (s *Server) asUser(ctx context.Context, u *user, timeout time.Duration, fn func(pgx.Tx) error) error {
	tx, err := s.db.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := tx.Exec(ctx, sqlBecomeUser, string(u.Raw), u.Subject, fmt.Sprintf("%dms", timeout.Milliseconds())); err != nil {
		return fmt.Errorf("become user: %w", err)
	}
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// The statement timeout matters because a SET ROLE does not pick up authenticated's own.
// request.jwt.claim.sub/role are the legacy per-claim settings auth.uid() and auth.role() read
// first: the RLS policies call them once per row, and reading them spares parsing the whole
// claims JSON every time (a third of the per-row cost, measured).
const sqlBecomeUser = `select set_config('role', 'authenticated', true),
       set_config('request.jwt.claims', $1, true),
       set_config('request.jwt.claim.sub', $2, true),
       set_config('request.jwt.claim.role', 'authenticated', true),
       set_config('statement_timeout', $3, true)`

// dbError turns what the SQL functions raise into a page error with a stable code. Their
// messages are written for people (and carry no secrets), so they are shown.
func dbError(err error) error {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return err
	}
	switch pe.Code {
	case "42501":
		return &pageError{Status: 403, Code: "forbidden", Msg: "Only an admin of this account may do this. Ask an admin to change your role.", Err: err}
	case "P0002":
		return &pageError{Status: 404, Code: "not_found", Msg: "It is gone, or you cannot see it.", Err: err}
	case "55000":
		return &pageError{Status: 409, Code: "conflict", Msg: trimPrefix(pe.Message) + ". Reload to see the current state.", Err: err}
	case "22023", "22P02":
		return &pageError{Status: 400, Code: "bad_request", Msg: trimPrefix(pe.Message) + ".", Err: err}
	case "57014":
		return &pageError{Status: 503, Code: "timeout", Msg: "The database took too long. Try again, or narrow the search.", Err: err}
	}
	return err
}

func trimPrefix(msg string) string {
	const p = "keapsync: "
	if len(msg) > len(p) && msg[:len(p)] == p {
		return msg[len(p):]
	}
	return msg
}
