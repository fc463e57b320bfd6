package push

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// pollWhileWriting is how often the stream loop looks for a finished batch while one is being
// written (it cannot wait on the connection and a channel at once).
const pollWhileWriting = 5 * time.Millisecond

// batch is a set of changed records to write to the queue; once it commits, everything up to
// upTo is in the queue and may be confirmed.
type batch struct {
	changes  map[change]pglogrepl.LSN
	xids     []uint32 // the transactions that made the changes
	upTo     pglogrepl.LSN
	upToTime time.Time
}

type written struct {
	batch
	err error
}

// session is the state of one replication session. The stream loop decodes and gathers while
// a writer goroutine writes the previous batch, so the server's decoding, our decoding and
// the queue writes overlap. Batches are written one at a time, in order, so confirmations only
// move forward.
type session struct {
	p         *Pusher
	dec       *decoder
	pending   map[change]pglogrepl.LSN // changed records not yet handed to the writer -> commit LSN
	xids      []uint32                 // the transactions that made the pending changes
	inTx      bool
	txLSN     pglogrepl.LSN // the open transaction's commit LSN
	txXid     uint32        // the open transaction's id
	txMade    bool          // the open transaction made a pending change
	received  pglogrepl.LSN // end of the last transaction received whole
	recvTime  time.Time
	confirmed pglogrepl.LSN // what the server may forget: everything before it is in the queue
	flushBy   time.Time     // when the gathered changes must be handed to the writer
	inflight  int           // batches handed to the writer and not yet written
	batches   chan batch
	results   chan written
	report    bool // the confirmed position moved: tell the server now
}

func newSession(p *Pusher, dec *decoder, confirmed pglogrepl.LSN) *session {
	return &session{p: p, dec: dec, pending: map[change]pglogrepl.LSN{}, confirmed: confirmed,
		batches: make(chan batch, 1), results: make(chan written, 2)}
}

func (s *session) run(ctx context.Context, conn *pgconn.PgConn) error {
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); s.writer(wctx) }()
	defer func() { cancel(); <-done }()

	nextStatus := time.Now()
	for {
		if err := s.collect(); err != nil {
			return err
		}
		if !s.flushBy.IsZero() && !time.Now().Before(s.flushBy) {
			if err := s.flush(ctx); err != nil {
				return err
			}
		}
		if s.report || !time.Now().Before(nextStatus) {
			if err := s.status(ctx, conn); err != nil {
				return err
			}
			s.report, nextStatus = false, time.Now().Add(s.p.cfg.StatusInterval)
		}
		deadline := nextStatus
		if !s.flushBy.IsZero() && s.flushBy.Before(deadline) {
			deadline = s.flushBy
		}
		if s.inflight > 0 {
			if poll := time.Now().Add(pollWhileWriting); poll.Before(deadline) {
				deadline = poll
			}
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
			if err := s.copyData(ctx, m.Data); err != nil {
				return err
			}
		case *pgproto3.ErrorResponse:
			return fmt.Errorf("push: server: %w", pgconn.ErrorResponseToPgError(m))
		}
	}
}

// writer writes batches to the queue, one transaction each, until ctx ends.
func (s *session) writer(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case b := <-s.batches:
			s.results <- written{batch: b, err: s.p.enqueue(ctx, b.changes, b.xids)}
		}
	}
}

// collect takes in the batches written since the last look and confirms what they cover.
func (s *session) collect() error {
	for {
		select {
		case w := <-s.results:
			s.inflight--
			if w.err != nil {
				return w.err
			}
			s.p.metrics.enqueued.Add(float64(len(w.changes)))
			s.advance(w.upTo, w.upToTime)
		default:
			return nil
		}
	}
}

func (s *session) advance(to pglogrepl.LSN, at time.Time) {
	if to > s.confirmed {
		s.confirmed, s.report = to, true
		s.p.metrics.lagSeconds.Set(max(0, time.Since(at).Seconds()))
	}
}

// copyData handles one message of the stream.
func (s *session) copyData(ctx context.Context, data []byte) error {
	if len(data) == 0 {
		return nil
	}
	switch data[0] {
	case pglogrepl.PrimaryKeepaliveMessageByteID:
		k, err := pglogrepl.ParsePrimaryKeepaliveMessage(data[1:])
		if err != nil {
			return fmt.Errorf("push: keepalive: %w", err)
		}
		// Nothing held back: every transaction the server sent is in the queue, so the WAL it
		// decoded and did not send (other tables, Keap's own writes) is released too.
		if !s.inTx && len(s.pending) == 0 && s.inflight == 0 && s.received <= s.confirmed && k.ServerWALEnd > s.confirmed {
			s.confirmed = k.ServerWALEnd
			s.p.metrics.lagSeconds.Set(0)
		}
		if k.ReplyRequested {
			s.report = true
		}
	case pglogrepl.XLogDataByteID:
		x, err := pglogrepl.ParseXLogData(data[1:])
		if err != nil {
			return fmt.Errorf("push: xlog data: %w", err)
		}
		return s.message(ctx, x.WALData)
	}
	return nil
}

func (s *session) message(ctx context.Context, data []byte) error {
	msg, err := pglogrepl.ParseV2(data, false)
	if err != nil {
		return fmt.Errorf("push: decode pgoutput: %w", err)
	}
	switch m := msg.(type) {
	case *pglogrepl.BeginMessage:
		s.inTx, s.txLSN, s.txXid, s.txMade = true, m.FinalLSN, m.Xid, false
	case *pglogrepl.CommitMessage:
		s.inTx = false
		s.received, s.recvTime = m.TransactionEndLSN, m.CommitTime
		switch {
		case len(s.pending) == 0 && s.inflight == 0:
			s.advance(s.received, s.recvTime) // nothing of ours in it, nothing before it waiting
		case s.flushBy.IsZero():
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
		if len(changes) > 0 && !s.txMade {
			s.xids, s.txMade = append(s.xids, s.txXid), true
		}
		s.p.metrics.changes.Add(float64(len(changes)))
		// A large transaction is handed over in parts; its end is confirmed after the last.
		if len(s.pending) >= s.p.cfg.BatchSize {
			return s.flush(ctx)
		}
	}
	return nil
}

// flush hands the gathered changes to the writer (waiting while it is behind by a batch). An
// empty batch still goes through the writer, in order, to confirm transactions that carried
// nothing to push once the batches before them are written.
func (s *session) flush(ctx context.Context) error {
	b := batch{changes: s.pending, xids: s.xids, upTo: s.received, upToTime: s.recvTime}
	// A large transaction is handed over in parts: its next part names it again.
	s.pending, s.xids, s.txMade, s.flushBy = map[change]pglogrepl.LSN{}, nil, false, time.Time{}
	select {
	case s.batches <- b:
		s.inflight++
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *session) status(ctx context.Context, conn *pgconn.PgConn) error {
	err := pglogrepl.SendStandbyStatusUpdate(ctx, conn, pglogrepl.StandbyStatusUpdate{WALWritePosition: s.confirmed})
	if err != nil {
		return fmt.Errorf("push: standby status: %w", err)
	}
	return nil
}
