package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keapsync/keapsync/sidecar/sandbox"
)

// keapJumps records each move of the sandbox's clock: Keap's logs carry its times, and a trail
// puts them back on the harness's clock to order them among the rest.
type keapJumps struct {
	mu    sync.Mutex
	from  []time.Time     // the sandbox's time just after each jump
	ahead []time.Duration // how far ahead of ours its clock was from then on
}

// advanceKeap moves the sandbox's clock ahead by d, and remembers it.
func (w *world) advanceKeap(d time.Duration) {
	w.jumps.mu.Lock()
	defer w.jumps.mu.Unlock()
	total := d
	if n := len(w.jumps.ahead); n > 0 {
		total += w.jumps.ahead[n-1]
	}
	w.sb.Advance(d)
	w.jumps.from, w.jumps.ahead = append(w.jumps.from, w.sb.Now()), append(w.jumps.ahead, total)
}

// ours is a time from the sandbox's logs on the harness's clock.
func (j *keapJumps) ours(t time.Time) time.Time {
	j.mu.Lock()
	defer j.mu.Unlock()
	for i := len(j.from) - 1; i >= 0; i-- {
		if !t.Before(j.from[i]) {
			return t.Add(-j.ahead[i])
		}
	}
	return t
}

// divergence is one contact field on which Keap and Postgres ended apart.
type divergence struct {
	keapID, localID int64
	field           string
}

// trailRow is one event in a divergent field's story, placed on the harness's clock.
type trailRow struct {
	at   time.Time
	line string
}

// sqlTrail is every version of one contact the change history kept, with the divergent
// field's value and Keap's stamp as each version had them.
// (tags live in keap.contact_tags, not in the row: a tag field shows ∅ here.)
const sqlTrail = `
select at, txid, origin, op, coalesce(new_row #>> string_to_array($4, '.'), '∅'), coalesce(new_row ->> 'last_updated', '∅'),
       coalesce((select string_agg(k, ',' order by k) from jsonb_object_keys(changed) k), '')
  from keapsync.change_history
 where account_id = $1 and table_name = 'contacts' and (row_id = $2 or keap_id = $3)
 order by id`

// sqlTrailState is what the sync state agreed on for the contact when the soak ended (the
// agreed document is flat: its keys are the field names the checker uses).
const sqlTrailState = `
select coalesce(agreed ->> $4, '∅'), coalesce(keap_modified::text, '∅'), coalesce(keap_seen_at::text, '∅')
  from keapsync.sync_state
 where account_id = $1 and object_type = 'contact' and (local_id = $2 or keap_id = $3)`

// trails explains each divergent field to whoever reads a failed soak's report: the writes
// either actor made to it, each version of the row Postgres recorded (the field's value, Keap's
// stamp, who wrote it), and Keap's calls and hook deliveries for the record, in time order.
// Without it a divergence found at the end of a soak names only the two values that disagree,
// and the cluster that knew how they came about is gone.
func (w *world) trails(ctx context.Context, divs []divergence, writes []write, resolve func(string) int64) []string {
	var out []string
	// Keap's logs are read once for all of them: each read copies the whole log.
	keap := keapLogs{w.sb.Requests(), w.sb.Deliveries()}
	for i, d := range divs {
		if i == 5 {
			out = append(out, fmt.Sprintf("… %d more divergent fields without a trail", len(divs)-i))
			break
		}
		rows, err := w.trail(ctx, d, writes, resolve, keap)
		if err != nil {
			out = append(out, fmt.Sprintf("contact %d %s: %v", d.keapID, d.field, err))
			continue
		}
		out = append(out, fmt.Sprintf("contact %d (local %d) %s:", d.keapID, d.localID, d.field))
		for _, r := range rows {
			out = append(out, "  "+r.at.Format("15:04:05.000")+" "+r.line)
		}
	}
	return out
}

// keapLogs is what the sandbox recorded of the soak: calls made to Keap and hook deliveries.
type keapLogs struct {
	requests   []sandbox.RequestRecord
	deliveries []sandbox.DeliveryRecord
}

func (w *world) trail(ctx context.Context, d divergence, writes []write, resolve func(string) int64, keap keapLogs) ([]trailRow, error) {
	var rows []trailRow
	for _, wr := range writes {
		if wr.Field == d.field && resolve(wr.Ref) == d.keapID {
			rows = append(rows, trailRow{wr.At, fmt.Sprintf("%s actor writes %q", wr.Side, wr.Value)})
		}
	}
	hist, err := w.pool.Query(ctx, sqlTrail, w.account, d.localID, d.keapID, d.field)
	if err != nil {
		return nil, fmt.Errorf("read its history: %w", err)
	}
	for hist.Next() {
		var at time.Time
		var txid int64
		var origin, op, value, stamp, changed string
		if err := hist.Scan(&at, &txid, &origin, &op, &value, &stamp, &changed); err != nil {
			hist.Close()
			return nil, fmt.Errorf("read its history: %w", err)
		}
		rows = append(rows, trailRow{at, fmt.Sprintf("postgres %s %s (tx %d): %s=%q, Keap stamp %s, changed [%s]",
			origin, op, txid, d.field, value, stamp, changed)})
	}
	hist.Close()
	if err := hist.Err(); err != nil {
		return nil, fmt.Errorf("read its history: %w", err)
	}
	path := "/contacts/" + strconv.FormatInt(d.keapID, 10)
	for _, r := range keap.requests {
		if strings.HasSuffix(r.Path, path) {
			rows = append(rows, trailRow{w.jumps.ours(r.At), fmt.Sprintf("keap answers %s %s with %d", r.Method, strings.TrimSuffix(r.Path+"?"+r.Query, "?"), r.Status)})
		}
	}
	for _, dl := range keap.deliveries {
		if slices.Contains(dl.IDs, d.keapID) {
			rows = append(rows, trailRow{w.jumps.ours(dl.At), fmt.Sprintf("keap hook %s attempt %d: %s %d %s", dl.EventKey, dl.Attempt, dl.Outcome, dl.Status, dl.Error)})
		}
	}
	slices.SortStableFunc(rows, func(a, b trailRow) int { return a.at.Compare(b.at) })
	var agreed, modified, seen string
	end := "at the end, no sync state"
	err = w.pool.QueryRow(ctx, sqlTrailState, w.account, d.localID, d.keapID, d.field).Scan(&agreed, &modified, &seen)
	switch {
	case err == nil:
		end = fmt.Sprintf("at the end, sync state agrees %s=%q, Keap stamp %s applied at %s", d.field, agreed, modified, seen)
	case !errors.Is(err, pgx.ErrNoRows):
		return nil, fmt.Errorf("read its sync state: %w", err)
	}
	return append(rows, trailRow{time.Now(), end}), nil
}
