package push

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
)

const (
	sqlConfirmed = `select coalesce(confirmed_flush_lsn, '0/0')::text, active from pg_replication_slots where slot_name = $1`
	sqlCatchUp   = `select keapsync.enqueue_unstreamed()`

	// One statement per batch (keapsync.enqueue_pushes is enqueue_push for many records). Deletes arrive without their account (the old tuple is the
	// primary key only): sync_state still holds it when the delete is to be propagated, and
	// holds nothing when it is not (or when Keap deleted the record), so such rows drop out
	// here. An account deleted meanwhile drops out too rather than failing the whole batch.
	sqlEnqueue = `
with c as (
  select * from unnest($1::text[], $2::text[], $3::bigint[], $4::text[]) as c(account, object_type, local_id, lsn)
), r as (
  select c.account::uuid as account_id, c.object_type, c.local_id, c.lsn from c where c.account <> ''
  union all
  select s.account_id, c.object_type, c.local_id, c.lsn
    from c join keapsync.sync_state s on s.object_type = c.object_type and s.local_id = c.local_id
   where c.account = ''
)
select keapsync.enqueue_pushes(array_agg(r.account_id), array_agg(r.object_type), array_agg(r.local_id), array_agg(r.lsn::pg_lsn))
  from r where exists (select 1 from keapsync.accounts a where a.id = r.account_id)`

	// How many of the transactions ($1, 32-bit ids as pgoutput gives them) a snapshot taken now
	// does not see yet. A commit is in the WAL, and so in the stream, a moment before other
	// sessions see it (PostgreSQL writes the commit record, then takes the transaction out of
	// the running ones): a worker reading the record in that moment would push the version
	// before the change, then take it off the queue, and the change would be lost. Each id is
	// widened to the xid8 nearest the snapshot's xmax: behind it by under 2^31 (across an
	// epoch boundary too), or ahead of it, a transaction still running and so not seen.
	sqlUnseen = `
with s as (select pg_current_snapshot() as snap, pg_snapshot_xmax(pg_current_snapshot())::text::numeric as top)
select count(*)::int from s, unnest($1::bigint[]) as x(xid),
 lateral (select (s.top % 4294967296 - x.xid + 4294967296) % 4294967296 as back) b
 where not pg_visible_in_snapshot(
   (case when b.back < 2147483648 then s.top - b.back else s.top + (4294967296 - b.back) end)::text::xid8, s.snap)`
)

// seenPoll is how often enqueue looks again for transactions committed but not yet seen: they
// become visible within microseconds, unless the committing session waits on something (a
// synchronous standby).
const seenPoll = 2 * time.Millisecond

// seenWarnAfter is how long a wait for visibility goes before it is logged.
const seenWarnAfter = 10 * time.Second

// Consume tails the slot until ctx ends: it sets up the publication and slot, streams, and
// reconnects after a lost connection, resuming from the slot's confirmed position. While
// another process holds the slot it waits and retries, so a standby takes over within
// ReconnectDelay of the active one dying. Configuration problems end it with an error.
func (p *Pusher) Consume(ctx context.Context) error {
	busyLogged := false
	for {
		err := p.ensure(ctx)
		if err == nil {
			err = p.stream(ctx)
		}
		if ctx.Err() != nil {
			return nil
		}
		switch {
		case errors.Is(err, ErrWalLevel), errors.Is(err, ErrNoReplication), errors.Is(err, ErrSlotMismatch), errors.Is(err, ErrPublication):
			return err
		case errors.Is(err, ErrSlotBusy):
			if !busyLogged {
				p.log.Info("standing by: the slot is held by another process", "err", err)
				busyLogged = true
			}
		case err != nil:
			p.log.Warn("replication stream lost; reconnecting", "err", err)
			busyLogged = false
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(p.cfg.ReconnectDelay):
		}
	}
}

// catchUp queues every record with a local change not yet pushed. The slot (made already)
// carries whatever commits after its position; a new slot, only what commits after it is made,
// so without this an edit made before serve's first start (or while a dropped slot was made
// again, or before a process died between the two) would wait for its record's next edit.
// Records already queued, or with nothing to send, cost only their turn in the queue.
func (p *Pusher) catchUp(ctx context.Context) error {
	var n int
	if err := p.cfg.DB.QueryRow(ctx, sqlCatchUp).Scan(&n); err != nil {
		return fmt.Errorf("push: queue the local changes not yet pushed: %w", explain(err))
	}
	if n > 0 {
		p.log.Info("queued local changes not yet pushed", "records", n)
	}
	return nil
}

// stream is one replication session. Changes are gathered, written to the queue in one
// transaction per batch, and only then is the end of the last transaction received confirmed.
func (p *Pusher) stream(ctx context.Context) error {
	var start string
	var held bool
	if err := p.cfg.DB.QueryRow(ctx, sqlConfirmed, p.cfg.Slot).Scan(&start, &held); err != nil {
		return fmt.Errorf("push: read slot position: %w", err)
	}
	// Before taking the slot, so that whoever sees it taken knows the catch-up is done; a
	// standby finding it held by another process skips it (and is refused just below).
	if !held {
		if err := p.catchUp(ctx); err != nil {
			return err
		}
	}
	confirmed, err := pglogrepl.ParseLSN(start)
	if err != nil {
		return fmt.Errorf("push: slot position %q: %w", start, err)
	}
	s := newSession(p, newDecoder(), confirmed)
	conn, err := p.replicationConn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	err = pglogrepl.StartReplication(ctx, conn, p.cfg.Slot, 0, pglogrepl.StartReplicationOptions{
		PluginArgs: []string{"proto_version '1'", "publication_names '" + p.cfg.Publication + "'"},
	})
	if err != nil {
		if isCode(err, "55006") {
			return &SlotBusyError{Slot: p.cfg.Slot}
		}
		return fmt.Errorf("push: start replication: %w", explain(err))
	}
	p.log.Info("streaming", "slot", p.cfg.Slot, "from", confirmed)
	p.metrics.active.Set(1)
	defer p.metrics.active.Set(0)
	return s.run(ctx, conn)
}

func (p *Pusher) replicationConn(ctx context.Context) (*pgconn.PgConn, error) {
	cfg, err := pgconn.ParseConfig(p.cfg.ReplicationURL)
	if err != nil {
		return nil, fmt.Errorf("push: replication URL: %w", err)
	}
	for k := range cfg.RuntimeParams {
		if strings.HasPrefix(k, "pool_") { // pgxpool settings, not server parameters
			delete(cfg.RuntimeParams, k)
		}
	}
	cfg.RuntimeParams["replication"] = "database"
	cfg.RuntimeParams["application_name"] = "keapsync-push"
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("push: replication connection: %w", explain(err))
	}
	return conn, nil
}

// enqueue writes changed records to the push queue in one transaction, once every transaction
// that made them (xids) is seen by other sessions, so a worker that claims them reads them.
func (p *Pusher) enqueue(ctx context.Context, changes map[change]pglogrepl.LSN, xids []uint32) error {
	n := len(changes)
	if n == 0 {
		return nil
	}
	if err := p.awaitSeen(ctx, xids); err != nil {
		return err
	}
	accounts, kinds, ids, lsns := make([]string, 0, n), make([]string, 0, n), make([]int64, 0, n), make([]string, 0, n)
	for c, lsn := range changes {
		accounts, kinds, ids, lsns = append(accounts, c.account), append(kinds, c.objectType), append(ids, c.localID), append(lsns, lsn.String())
	}
	if _, err := p.cfg.DB.Exec(ctx, sqlEnqueue, accounts, kinds, ids, lsns); err != nil {
		return fmt.Errorf("push: enqueue %d changes: %w", n, err)
	}
	time.AfterFunc(p.cfg.Settle, p.nudge) // a first change is due then
	return nil
}

// awaitSeen waits until a snapshot sees every transaction in xids (sqlUnseen).
func (p *Pusher) awaitSeen(ctx context.Context, xids []uint32) error {
	ids := make([]int64, len(xids))
	for i, x := range xids {
		ids[i] = int64(x)
	}
	start, warned := time.Now(), false
	for {
		var unseen int
		if err := p.cfg.DB.QueryRow(ctx, sqlUnseen, ids).Scan(&unseen); err != nil {
			return fmt.Errorf("push: are the changes' transactions visible: %w", err)
		}
		if unseen == 0 {
			if warned {
				p.log.Info("committed transactions became visible; queueing their changes", "waited", time.Since(start).Round(time.Millisecond))
			}
			return nil
		}
		if !warned && time.Since(start) >= seenWarnAfter {
			warned = true
			p.log.Warn("transactions committed in the WAL are not yet visible to other sessions; their changes wait to be queued (is a synchronous standby named in synchronous_standby_names down?)",
				"transactions", unseen, "waited", time.Since(start).Round(time.Second))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(seenPoll):
		}
	}
}
