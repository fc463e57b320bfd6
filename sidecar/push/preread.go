package push

// The batched pre-read: one listing of an account's contacts changed since the versions held
// stands in for the fetch-before-update of several due updates at once.
//
// The fetch-before-update (refresh) is there to see a Keap-side edit made since the version we
// hold. GET /v1/contacts?since=T lists every contact whose last_updated is at or after T (FACTS
// §4: "on LastUpdated"). With T a little before the oldest stamp among the versions held for the
// due updates, every one of those contacts is in the listing, changed or not (a contact's stamp
// never goes below the one of a version already read), each as Keap holds it when the listing is
// answered. So each listed item is exactly what its own GET would have returned, read a little
// earlier: it is applied the same way (keapsync.set_asked_at with the database's time before
// the listing, then keapsync.apply_keap_record), and the queue row notes when
// (push_queue.keap_checked_at). An update whose change was queued before that, with no hook for
// the contact waiting, goes without its own GET (knownCurrent). Safety does not depend on the
// listing being complete: only contacts that appear in it are marked, so one it leaves out
// (deleted in Keap, beyond the page, a stamp Keap moved back) simply keeps its own GET.
//
// The race it leaves open is the one the GET leaves (a Keap edit between the read and the
// PATCH), as wide as the push of the records one listing covers: at most the records the workers
// claim next (readAhead), due within dueWithin, and a mark counts for checkedFor only.

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keapsync/keapsync/sidecar/keap"
)

const (
	// prereadFactor: a listing pays only while it holds at most this many contacts per update
	// it reads for (the others are contacts changed meanwhile: bytes, not calls).
	prereadFactor = 10
	// prereadSmall: a listing of up to this many contacts is worth one call whatever the ratio.
	// A hot account's own pushes restamp every contact they write, so a listing since a hot
	// contact's stamp holds every contact pushed since; a page this size still answers in about
	// the time of one or two single reads.
	prereadSmall = 200
	// prereadPage is Keap's largest v1 page.
	prereadPage = 1000
	// stampMargin goes below the oldest stamp held: Keap may stamp whole seconds and may read
	// `since` as exclusive (FACTS §7), and a contact missing from the listing costs its own GET.
	stampMargin = time.Second
	// checkedFor is how long a listing's read stands in for an update's own: the covered
	// records are the next ones due, pushed within a round; one left longer (a worker stopped,
	// a throttled account) reads again.
	checkedFor = 5 * time.Second
	// dueWithin: a listing also reads for the updates due this soon (if they do not change
	// again), which other workers claim next: records come due one by one as each one's
	// settle ends, and a listing only for what is due at once would often read for one.
	dueWithin = checkedFor / 2
	// readAhead: a listing reads for at most this many updates besides the worker's own claims
	// (two rounds of the default four workers), so its versions are applied, in one
	// transaction, in a moment before the claimed pushes go.
	readAhead = 2 * 4 * claimBatch
)

// sqlPrereadEligible: contact update q (with sync state st) would read Keap's version first
// and has not been read for since its last change. Retries and pushes whose answer is not
// recorded keep their own GET, as in knownCurrent.
const sqlPrereadEligible = `q.account_id = $1::uuid and q.object_type = 'contact'
     and st.keap_id is not null and st.keap_modified is not null and st.local_deleted_at is null
     and q.attempts = 0 and q.sent is null and q.create_sent_at is null
     and not coalesce(q.keap_checked_at > q.last_enqueued_at and q.keap_checked_at > now() - $6::interval, false)`

// sqlPrereadCandidates: the account's contact updates a listing could read for: those this
// worker claimed ($2), and the next ones due within dueWithin ($7) if they do not change again
// (claim order, at most $5; none another worker holds), with Keap's stamp of the version held.
// The claimed are looked up by key (unnest), and the next due can be walked in order
// (push_queue_account_due_idx), so neither has to read all the account has queued: a bulk edit's
// queue, too new for statistics, made the planner read and sort it on every claim.
var sqlPrereadCandidates = `
select c.local_id, c.keap_id, c.keap_modified, c.claimed
  from ((select q.local_id, st.keap_id, st.keap_modified, true as claimed from unnest($2::bigint[]) as claimed (local_id)
           join keapsync.push_queue q on q.account_id = $1::uuid and q.object_type = 'contact' and q.local_id = claimed.local_id
           join keapsync.sync_state st on st.account_id = q.account_id and st.object_type = q.object_type and st.local_id = q.local_id
          where ` + sqlPrereadEligible + `)
        union all
        (select q.local_id, st.keap_id, st.keap_modified, false from keapsync.push_queue q
           join keapsync.sync_state st on st.account_id = q.account_id and st.object_type = q.object_type and st.local_id = q.local_id
          where ` + sqlPrereadEligible + ` and not q.local_id = any ($2::bigint[])
            and q.next_attempt_at <= now() and ` + dueBy("now() + $7::interval") + `
          order by q.next_attempt_at
          limit $5)) c`

const (
	// sqlNewestStamps: the account's newest Keap stamps of contacts held here, up to $2: about
	// what a listing since one of them returns (index contacts_account_updated_idx).
	sqlNewestStamps = `
select last_updated from keap.contacts
 where account_id = $1::uuid and last_updated is not null
 order by last_updated desc limit $2`
	// One worker at a time reads ahead for an account's updates other workers will claim; the
	// others read for their own claims only, so two listings do not read for the same updates.
	sqlReadAheadLock   = `select pg_try_advisory_lock(hashtextextended('keapsync.preread/' || $1, 0))`
	sqlReadAheadUnlock = `select pg_advisory_unlock(hashtextextended('keapsync.preread/' || $1, 0))`
)

const (
	// sqlApplyListed applies listed versions of contacts, one by one, as Keap's answers asked for
	// at the time set (keapsync.set_asked_at); it yields each one's Keap id and outcome.
	sqlApplyListed = `select keap_id, outcome from keapsync.apply_keap_records($1::uuid, 'contact', $2::jsonb)`
	// sqlNoteChecked: Keap's versions of contacts $2 were read at $3 for their queued changes.
	sqlNoteChecked = `
update keapsync.push_queue set keap_checked_at = $3
 where account_id = $1::uuid and object_type = 'contact' and local_id = any ($2::bigint[])
   and (keap_checked_at is null or keap_checked_at < $3)`
)

// candidate is a due contact update a listing may read for.
type candidate struct {
	localID, keapID int64
	modified        time.Time // Keap's stamp of the version held
	around          int       // the account's contacts stamped at or after modified - stampMargin (up to a page and one)
	claimed         bool      // this worker holds it: without the listing it reads with a GET now
}

// cover picks the candidates one listing reads for: the most recently stamped, as many as keep
// the listing within one page of prereadLimit. Fewer than two, or none this worker holds: none
// (a single update's GET costs what the listing would, and a listing only for records other
// workers may not reach in time is a call that may save none).
func cover(cands []candidate) []candidate {
	slices.SortFunc(cands, func(a, b candidate) int { return b.modified.Compare(a.modified) })
	for n := len(cands); n >= 2; n-- {
		if cands[n-1].around <= prereadLimit(n) && slices.ContainsFunc(cands[:n], func(c candidate) bool { return c.claimed }) {
			return cands[:n]
		}
	}
	return nil
}

// prereadLimit is the page size of a listing that reads for n updates: prereadFactor contacts
// each, at least prereadSmall, at most one page.
func prereadLimit(n int) int { return min(prereadPage, max(prereadSmall, prereadFactor*n)) }

// preread runs the batched pre-read for the contact updates among the claimed jobs, per account.
// It only saves calls: whatever fails, each update reads its contact itself as before.
func (p *Pusher) preread(ctx context.Context, conn *pgxpool.Conn, jobs []job) {
	if !p.cfg.FetchBeforeUpdate {
		return
	}
	claimed := map[string][]int64{}
	for _, j := range jobs {
		if j.objectType == "contact" && j.attempts == 0 && len(j.sent) == 0 && j.createSentAt == nil {
			claimed[j.account] = append(claimed[j.account], j.localID)
		}
	}
	for account, ids := range claimed {
		if err := p.prereadAccount(ctx, conn, account, ids); err != nil && ctx.Err() == nil {
			p.log.Warn("batched read of due contacts failed; each update reads its contact", "account", account, "err", err)
		}
	}
}

func (p *Pusher) prereadAccount(ctx context.Context, conn *pgxpool.Conn, account string, claimed []int64) error {
	if direction, err := syncDirection(ctx, conn, account, "contact"); err != nil || direction != "both" {
		return err
	}
	ahead := 0
	var locked bool
	if err := conn.QueryRow(ctx, sqlReadAheadLock, account).Scan(&locked); err != nil {
		return fmt.Errorf("push: read-ahead lock: %w", err)
	}
	if locked {
		defer func() {
			// Not discarded on failure: the session holds the claimed records' locks. A lock
			// left behind only keeps other workers from reading ahead for the account.
			if _, err := conn.Exec(context.WithoutCancel(ctx), sqlReadAheadUnlock, account); err != nil {
				p.log.Warn("read-ahead unlock", "account", account, "err", err)
			}
		}()
		ahead = readAhead
	}
	rows, err := conn.Query(ctx, sqlPrereadCandidates, account, claimed, p.cfg.Settle.String(), p.cfg.MaxSettle.String(),
		ahead, checkedFor.String(), dueWithin.String())
	if err != nil {
		return fmt.Errorf("push: due contact updates: %w", err)
	}
	cands, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (candidate, error) {
		var c candidate
		return c, r.Scan(&c.localID, &c.keapID, &c.modified, &c.claimed)
	})
	if err != nil {
		return fmt.Errorf("push: due contact updates: %w", err)
	}
	if len(cands) < 2 {
		return nil
	}
	rows, err = conn.Query(ctx, sqlNewestStamps, account, prereadPage+1)
	if err != nil {
		return fmt.Errorf("push: newest contact stamps: %w", err)
	}
	stamps, err := pgx.CollectRows(rows, pgx.RowTo[time.Time])
	if err != nil {
		return fmt.Errorf("push: newest contact stamps: %w", err)
	}
	for i := range cands {
		// Newest first: the stamps at or after the candidate's less the margin lead the list.
		cutoff := cands[i].modified.Add(-stampMargin)
		cands[i].around = sort.Search(len(stamps), func(k int) bool { return stamps[k].Before(cutoff) })
	}
	covered := cover(cands)
	p.log.Debug("batched read of due contacts", "account", account, "due", len(cands), "covered", len(covered))
	if covered == nil {
		return nil
	}
	api, err := p.cfg.API(ctx, account)
	if err != nil {
		return fmt.Errorf("push: Keap client of account %s: %w", account, err)
	}
	var asked time.Time
	if err := conn.QueryRow(ctx, sqlNow).Scan(&asked); err != nil {
		return fmt.Errorf("push: the database's time: %w", err)
	}
	cctx, cancel := context.WithTimeout(keap.WithPriority(ctx, keap.Live), p.cfg.CallTimeout)
	defer cancel()
	since := covered[len(covered)-1].modified.Add(-stampMargin)
	page, err := api.ListContacts(cctx, keap.ContactQuery{Since: since, Order: keap.OrderByLastUpdated,
		OptionalProperties: keap.SyncProperties, Limit: prereadLimit(len(covered))})
	p.metrics.prereads.Inc()
	if err != nil {
		return fmt.Errorf("push: list contacts changed since %s: %w", keap.FormatTime(since), err)
	}
	local := make(map[keap.ID]int64, len(covered))
	for _, c := range covered {
		local[keap.ID(c.keapID)] = c.localID
	}
	var listed []json.RawMessage
	for _, c := range page.Items {
		if _, ok := local[c.ID]; ok {
			listed = append(listed, c.Raw) // others changed too, but are not due here: their hooks bring them
		}
	}
	if len(listed) == 0 {
		return nil
	}
	raws, err := json.Marshal(listed)
	if err != nil {
		return fmt.Errorf("push: listed contacts: %w", err)
	}
	// One transaction for all: each version is applied as its own GET's answer would be.
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, sqlAskedAt, asked); err != nil {
			return fmt.Errorf("push: note when Keap's versions were asked for: %w", err)
		}
		rows, err := tx.Query(ctx, sqlApplyListed, account, raws)
		if err != nil {
			return fmt.Errorf("push: apply listed contacts: %w", err)
		}
		var checked []int64
		var id int64
		var outcome string
		_, err = pgx.ForEachRow(rows, []any{&id, &outcome}, func() error {
			switch outcome {
			case "updated", "unchanged", "duplicate":
				// Held now: Keap's version as of the listing. Not so a 'stale' one (we hold a
				// newer version, read when?) or an 'ambiguous' one (a recheck is queued).
				checked = append(checked, local[keap.ID(id)])
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("push: apply listed contacts: %w", err)
		}
		if _, err := tx.Exec(ctx, sqlNoteChecked, account, checked, asked); err != nil {
			return fmt.Errorf("push: note the contacts read: %w", err)
		}
		return nil
	})
}
