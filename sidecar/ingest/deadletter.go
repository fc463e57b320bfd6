package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

const (
	// One open dead letter per record: a record that fails again (the next reconcile reads it
	// again) updates its letter instead of adding one per sweep. Letters without a Keap id
	// (parked inbox rows) never match and are always added.
	sqlPark = `
with open as (
  update keapsync.dead_letters
     set attempts = attempts + 1, last_failed_at = now(), payload = $4, error = $5, http_status = $6
   where account_id = $1 and source = 'ingest' and object_type = $2 and keap_id = $3 and status in ('parked', 'retry')
  returning id)
insert into keapsync.dead_letters (account_id, source, object_type, keap_id, payload, error, http_status)
select $1, 'ingest', $2, $3, $4, $5, $6
 where not exists (select from open)`
	// A record applied as Keap sent it settles the letters it had: the sync caught up.
	sqlParkSettle = `
update keapsync.dead_letters set status = 'done'
 where account_id = $1 and source = 'ingest' and object_type = $2 and keap_id = any ($3) and status in ('parked', 'retry')`
)

// deadLetter is one record (or inbox row) ingest could not store as Keap sent it.
type deadLetter struct {
	account, objectType string
	keapID              int64  // 0 when the record's id is not known
	raw                 []byte // the record's bytes as received; nil when there are none
	clean               []byte // the record as rewritten by storable and applied, if it was
	alt                 alterations
	extra               map[string]any // payload when there is no record (an inbox row's id)
	cause               string
	status              *int // Keap's HTTP status, when Keap refused
}

// prepared is a record made ready for the apply functions.
type prepared struct {
	stored json.RawMessage // what to apply; nil when nothing can be (the record only gets its letter)
	letter deadLetter      // the record's letter; needed, once applied, only if letter.alt.any()
}

// prepare makes rec storable (see storable). A record rewritten on the way gets a letter even
// when its apply succeeds, saying what was changed and keeping the original.
func prepare(account, objectType string, rec record) prepared {
	letter := deadLetter{account: account, objectType: objectType, keapID: rec.id, raw: rec.raw}
	if rec.bad != nil {
		letter.cause = rec.bad.Error()
		return prepared{letter: letter}
	}
	stored, alt, err := storable(rec.raw)
	if err != nil {
		letter.cause = err.Error()
		return prepared{letter: letter}
	}
	if alt.any() {
		letter.clean, letter.alt = stored, alt
		letter.cause = "applied after rewriting what PostgreSQL cannot store: " + alt.String()
	}
	return prepared{stored: stored, letter: letter}
}

// payload is what the letter keeps of the record: the record itself when PostgreSQL can store
// it as received; otherwise the record as stored (if it was) and the original, escaped.
func (d deadLetter) payload() any {
	switch {
	case d.raw == nil && d.extra == nil:
		return nil
	case d.raw == nil:
		return d.extra
	}
	if !d.alt.any() {
		if clean, alt, err := storable(d.raw); err == nil && !alt.any() {
			return json.RawMessage(clean)
		}
	}
	p := map[string]any{"original": escapeOriginal(d.raw)}
	if d.clean != nil {
		p["record"] = json.RawMessage(d.clean)
	}
	if d.alt.any() {
		p["altered"] = d.alt.String()
	}
	return p
}

// park writes a dead letter within tx. It always succeeds short of a lost connection: should
// PostgreSQL refuse the payload (a nesting or size it cannot take), the letter keeps only the
// escaped original, which is a plain string.
func park(ctx context.Context, tx pgx.Tx, d deadLetter) error {
	var keapID *int64
	if d.keapID != 0 {
		keapID = &d.keapID
	}
	cause := storableText(d.cause)
	sp, err := tx.Begin(ctx)
	if err != nil {
		return fmt.Errorf("savepoint: %w", err)
	}
	_, err = sp.Exec(ctx, sqlPark, d.account, d.objectType, keapID, d.payload(), cause, d.status)
	if err == nil {
		return sp.Commit(ctx)
	}
	_ = sp.Rollback(ctx)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || contention(pgErr) {
		return fmt.Errorf("park %s %d: %w", d.objectType, d.keapID, err)
	}
	fallback := map[string]any{"original": escapeOriginal(d.raw), "unstorable": storableText(pgErr.Message)}
	if _, err := tx.Exec(ctx, sqlPark, d.account, d.objectType, keapID, fallback, cause, d.status); err != nil {
		return fmt.Errorf("park %s %d: %w", d.objectType, d.keapID, err)
	}
	return nil
}

func parkAll(ctx context.Context, tx pgx.Tx, letters []deadLetter) error {
	for _, l := range letters {
		if err := park(ctx, tx, l); err != nil {
			return err
		}
	}
	return nil
}

// settle closes the open letters of records just applied as Keap sent them.
func settle(ctx context.Context, tx pgx.Tx, account, objectType string, keapIDs []int64) error {
	if len(keapIDs) == 0 {
		return nil
	}
	if _, err := tx.Exec(ctx, sqlParkSettle, account, objectType, keapIDs); err != nil {
		return fmt.Errorf("settle dead letters: %w", err)
	}
	return nil
}
