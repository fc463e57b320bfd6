package push

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

const (
	sqlObjectTypes = `select table_name, object_type from keapsync.object_types`
	sqlConfirmed   = `select coalesce(confirmed_flush_lsn, '0/0')::text from pg_replication_slots where slot_name = $1`

	// One statement per batch. Deletes arrive without their account (the old tuple is the
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
select keapsync.enqueue_push(r.account_id, r.object_type, r.local_id, r.lsn::pg_lsn)
  from r where exists (select 1 from keapsync.accounts a where a.id = r.account_id)`
)

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
		case errors.Is(err, ErrWalLevel), errors.Is(err, ErrNoReplication), errors.Is(err, ErrSlotMismatch):
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

// stream is one replication session. Changes are gathered, written to the queue in one
// transaction per batch, and only then is the end of the last transaction received confirmed.
func (p *Pusher) stream(ctx context.Context) error {
	types, err := p.objectTypes(ctx)
	if err != nil {
		return err
	}
	var start string
	if err := p.cfg.DB.QueryRow(ctx, sqlConfirmed, p.cfg.Slot).Scan(&start); err != nil {
		return fmt.Errorf("push: read slot position: %w", err)
	}
	s := &session{p: p, dec: newDecoder(types), pending: map[change]pglogrepl.LSN{}}
	if s.confirmed, err = pglogrepl.ParseLSN(start); err != nil {
		return fmt.Errorf("push: slot position %q: %w", start, err)
	}
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
	p.log.Info("streaming", "slot", p.cfg.Slot, "from", s.confirmed)
	p.metrics.active.Set(1)
	defer p.metrics.active.Set(0)
	return s.run(ctx, conn)
}

func (p *Pusher) objectTypes(ctx context.Context) (map[string]string, error) {
	rows, err := p.cfg.DB.Query(ctx, sqlObjectTypes)
	if err != nil {
		return nil, fmt.Errorf("push: read object types: %w", err)
	}
	out := map[string]string{}
	var table, kind string
	_, err = pgx.ForEachRow(rows, []any{&table, &kind}, func() error { out[table] = kind; return nil })
	if err != nil {
		return nil, fmt.Errorf("push: read object types: %w", err)
	}
	return out, nil
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

// session is the state of one replication session.
type session struct {
	p         *Pusher
	dec       *decoder
	pending   map[change]pglogrepl.LSN // changed records not yet in the queue -> commit LSN
	inTx      bool
	txLSN     pglogrepl.LSN // the open transaction's commit LSN
	txTime    time.Time
	received  pglogrepl.LSN // end of the last transaction received whole
	recvTime  time.Time
	confirmed pglogrepl.LSN // what the server may forget: everything before it is in the queue
	flushBy   time.Time     // when the oldest unflushed transaction must be written
}

func (s *session) run(ctx context.Context, conn *pgconn.PgConn) error {
	nextStatus := time.Now()
	for {
		if !time.Now().Before(nextStatus) {
			if err := s.status(ctx, conn); err != nil {
				return err
			}
			nextStatus = time.Now().Add(s.p.cfg.StatusInterval)
		}
		deadline := nextStatus
		if !s.flushBy.IsZero() && s.flushBy.Before(deadline) {
			deadline = s.flushBy
		}
		if !s.flushBy.IsZero() && !time.Now().Before(s.flushBy) {
			if err := s.flush(ctx, conn); err != nil {
				return err
			}
			continue
		}
		rctx, cancel := context.WithDeadline(ctx, deadline)
		msg, err := conn.ReceiveMessage(rctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if pgconn.Timeout(err) {
				continue
			}
			return fmt.Errorf("push: receive: %w", err)
		}
		switch m := msg.(type) {
		case *pgproto3.CopyData:
			reply, err := s.copyData(ctx, conn, m.Data)
			if err != nil {
				return err
			}
			if reply {
				nextStatus = time.Now()
			}
		case *pgproto3.ErrorResponse:
			return fmt.Errorf("push: server: %w", pgconn.ErrorResponseToPgError(m))
		}
	}
}

// copyData handles one message of the stream; it reports whether the server asked for a reply.
func (s *session) copyData(ctx context.Context, conn *pgconn.PgConn, data []byte) (bool, error) {
	if len(data) == 0 {
		return false, nil
	}
	switch data[0] {
	case pglogrepl.PrimaryKeepaliveMessageByteID:
		k, err := pglogrepl.ParsePrimaryKeepaliveMessage(data[1:])
		if err != nil {
			return false, fmt.Errorf("push: keepalive: %w", err)
		}
		// Nothing held back: everything the server has sent is in the queue, so WAL it
		// decoded and did not send (other tables, Keap's writes) need not be kept either.
		if !s.inTx && len(s.pending) == 0 && s.received <= s.confirmed && k.ServerWALEnd > s.confirmed {
			s.confirmed = k.ServerWALEnd
			s.p.metrics.lagSeconds.Set(0)
		}
		return k.ReplyRequested, nil
	case pglogrepl.XLogDataByteID:
		x, err := pglogrepl.ParseXLogData(data[1:])
		if err != nil {
			return false, fmt.Errorf("push: xlog data: %w", err)
		}
		return false, s.message(ctx, conn, x.WALData)
	}
	return false, nil
}

func (s *session) message(ctx context.Context, conn *pgconn.PgConn, data []byte) error {
	msg, err := pglogrepl.ParseV2(data, false)
	if err != nil {
		return fmt.Errorf("push: decode pgoutput: %w", err)
	}
	switch m := msg.(type) {
	case *pglogrepl.BeginMessage:
		s.inTx, s.txLSN, s.txTime = true, m.FinalLSN, m.CommitTime
	case *pglogrepl.CommitMessage:
		s.inTx = false
		s.received, s.recvTime = m.TransactionEndLSN, m.CommitTime
		if len(s.pending) == 0 {
			s.confirm()
		} else if s.flushBy.IsZero() {
			s.flushBy = time.Now().Add(s.p.cfg.FlushInterval)
		}
	case *pglogrepl.RelationMessageV2:
		s.dec.relation(m)
	default:
		changes, err := s.dec.row(msg)
		if err != nil {
			return err
		}
		for _, c := range changes {
			s.pending[c] = s.txLSN
		}
		s.p.metrics.changes.Add(float64(len(changes)))
		// A large transaction is written in parts; its end is confirmed only after the last.
		if len(s.pending) >= s.p.cfg.BatchSize {
			return s.flush(ctx, conn)
		}
	}
	return nil
}

// flush writes the pending changes to the queue in one transaction, then confirms.
func (s *session) flush(ctx context.Context, conn *pgconn.PgConn) error {
	if n := len(s.pending); n > 0 {
		accounts, kinds, ids, lsns := make([]string, 0, n), make([]string, 0, n), make([]int64, 0, n), make([]string, 0, n)
		for c, lsn := range s.pending {
			accounts, kinds, ids, lsns = append(accounts, c.account), append(kinds, c.objectType), append(ids, c.localID), append(lsns, lsn.String())
		}
		if _, err := s.p.cfg.DB.Exec(ctx, sqlEnqueue, accounts, kinds, ids, lsns); err != nil {
			return fmt.Errorf("push: enqueue %d changes: %w", n, err)
		}
		clear(s.pending)
		s.p.metrics.enqueued.Add(float64(n))
	}
	s.confirm()
	// Confirm at once rather than at the next status tick: the slot lets go of WAL sooner.
	return s.status(ctx, conn)
}

// confirm moves the confirmed position to the end of the last transaction received whole.
// Callers make sure every change up to it is in the queue.
func (s *session) confirm() {
	s.flushBy = time.Time{}
	if s.received > s.confirmed {
		s.confirmed = s.received
		s.p.metrics.lagSeconds.Set(max(0, time.Since(s.recvTime).Seconds()))
	}
}

func (s *session) status(ctx context.Context, conn *pgconn.PgConn) error {
	err := pglogrepl.SendStandbyStatusUpdate(ctx, conn, pglogrepl.StandbyStatusUpdate{WALWritePosition: s.confirmed})
	if err != nil {
		return fmt.Errorf("push: standby status: %w", err)
	}
	return nil
}
