package push

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/keapsync/keapsync/sidecar/objecttype"
)

// Tables are the keap.* tables the publication carries: the registry's. order_items and
// order_payments are not among them: they carry no origin marker, and Keap's v1 API cannot change
// an order once it exists (a local order's items are read with the order when it is created).
var Tables = objecttype.Tables()

// Errors from the setup checks, for errors.Is (and for `keapsync doctor` to explain).
var (
	ErrWalLevel      = errors.New("push: wal_level is not logical")
	ErrNoReplication = errors.New("push: the database role may not replicate")
	ErrSlotMismatch  = errors.New("push: the replication slot exists but is not a pgoutput slot of this database")
	ErrSlotBusy      = errors.New("push: the replication slot is in use by another process")
	ErrPublication   = errors.New("push: the publication is missing and this role may not create it")
)

// SlotBusyError says which server process holds the slot.
type SlotBusyError struct {
	Slot string
	PID  int32
}

func (e *SlotBusyError) Error() string {
	return fmt.Sprintf("push: replication slot %s is active for server process %d (another keapsync?)", e.Slot, e.PID)
}

// Is makes errors.Is(err, ErrSlotBusy) true.
func (e *SlotBusyError) Is(target error) bool { return target == ErrSlotBusy }

const (
	sqlWalLevel     = `select current_setting('wal_level')`
	sqlCanReplicate = `select rolsuper or rolreplication, current_user from pg_roles where rolname = current_user`
	sqlPublished    = `select tablename from pg_publication_tables where pubname = $1 and schemaname = 'keap'`
	sqlPubExists    = `select exists (select 1 from pg_publication where pubname = $1)`
	sqlSlot         = `
select s.plugin, s.slot_type, coalesce(s.database, ''), s.active, coalesce(s.active_pid, 0), s.database = current_database()
  from pg_replication_slots s where s.slot_name = $1`
	sqlCreateSlot = `select pg_create_logical_replication_slot($1, 'pgoutput')`
)

// Check verifies what the push path needs without changing anything: wal_level=logical, a
// role that may replicate, and, if the slot exists, that it is ours and free. It is what
// `keapsync doctor` runs.
func (p *Pusher) Check(ctx context.Context) error {
	var level string
	if err := p.cfg.DB.QueryRow(ctx, sqlWalLevel).Scan(&level); err != nil {
		return fmt.Errorf("push: read wal_level: %w", err)
	}
	if level != "logical" {
		return fmt.Errorf("%w: it is %q; set wal_level = logical in postgresql.conf (or ALTER SYSTEM) and restart Postgres", ErrWalLevel, level)
	}
	var ok bool
	var role string
	if err := p.cfg.DB.QueryRow(ctx, sqlCanReplicate).Scan(&ok, &role); err != nil {
		return fmt.Errorf("push: read role attributes: %w", err)
	}
	if !ok {
		return fmt.Errorf("%w: run ALTER ROLE %s WITH REPLICATION as a superuser", ErrNoReplication, pgx.Identifier{role}.Sanitize())
	}
	_, err := p.slotState(ctx)
	return err
}

// slotState reports whether the slot exists, and an error if it is not ours or is held.
func (p *Pusher) slotState(ctx context.Context) (bool, error) {
	var plugin, kind, db string
	var active, here bool
	var pid int32
	err := p.cfg.DB.QueryRow(ctx, sqlSlot, p.cfg.Slot).Scan(&plugin, &kind, &db, &active, &pid, &here)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("push: read slot %s: %w", p.cfg.Slot, err)
	}
	if kind != "logical" || plugin != "pgoutput" || !here {
		return true, fmt.Errorf("%w: slot %s is %s/%s on database %q; pick another slot name or drop it",
			ErrSlotMismatch, p.cfg.Slot, kind, plugin, db)
	}
	if active {
		return true, &SlotBusyError{Slot: p.cfg.Slot, PID: pid}
	}
	return true, nil
}

// ensure creates the publication and the slot when missing (first start) and checks them on
// every start. A second process racing to create either finds it made (42710) and carries on.
func (p *Pusher) ensure(ctx context.Context) error {
	if err := p.Check(ctx); err != nil && !errors.Is(err, ErrSlotBusy) {
		return err
	}
	if err := p.ensurePublication(ctx); err != nil {
		return err
	}
	exists, err := p.slotState(ctx)
	if err != nil || exists {
		return err
	}
	if _, err := p.cfg.DB.Exec(ctx, sqlCreateSlot, p.cfg.Slot); err != nil && !isCode(err, "42710") {
		return fmt.Errorf("push: create replication slot %s: %w", p.cfg.Slot, explain(err))
	}
	p.log.Info("created replication slot", "slot", p.cfg.Slot)
	return nil
}

func (p *Pusher) ensurePublication(ctx context.Context) error {
	var exists bool
	if err := p.cfg.DB.QueryRow(ctx, sqlPubExists, p.cfg.Publication).Scan(&exists); err != nil {
		return fmt.Errorf("push: read publication: %w", err)
	}
	pub := pgx.Identifier{p.cfg.Publication}.Sanitize()
	if !exists {
		names := make([]string, len(Tables))
		for i, t := range Tables {
			names[i] = pgx.Identifier{"keap", t}.Sanitize()
		}
		// Truncates are not published: emptying a table is not a request to delete in Keap.
		sql := fmt.Sprintf("create publication %s for table %s with (publish = 'insert, update, delete')",
			pub, strings.Join(names, ", "))
		if _, err := p.cfg.DB.Exec(ctx, sql); err != nil && !isCode(err, "42710") {
			if isCode(err, "42501") { // publishing a table takes its owner; the migrations create keapsync_push
				return fmt.Errorf("%w: publication %s; as the owner of the keap tables run: %s (%w)", ErrPublication, p.cfg.Publication, sql, err)
			}
			return fmt.Errorf("push: create publication %s: %w", p.cfg.Publication, explain(err))
		}
		p.log.Info("created publication", "publication", p.cfg.Publication)
	}
	rows, err := p.cfg.DB.Query(ctx, sqlPublished, p.cfg.Publication)
	if err != nil {
		return fmt.Errorf("push: read publication tables: %w", err)
	}
	have, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("push: read publication tables: %w", err)
	}
	for _, t := range Tables {
		if !slices.Contains(have, t) {
			sql := fmt.Sprintf("alter publication %s add table %s", pub, pgx.Identifier{"keap", t}.Sanitize())
			if _, err := p.cfg.DB.Exec(ctx, sql); err != nil && !isCode(err, "42710") {
				return fmt.Errorf("push: add keap.%s to publication %s: %w", t, p.cfg.Publication, explain(err))
			}
		}
	}
	return nil
}

func isCode(err error, code string) bool {
	var pg *pgconn.PgError
	return errors.As(err, &pg) && pg.Code == code
}

// explain adds what to do to the errors a misconfigured server gives.
func explain(err error) error {
	var pg *pgconn.PgError
	if !errors.As(err, &pg) {
		return err
	}
	switch pg.Code {
	case "55000": // object_not_in_prerequisite_state: wal_level
		return fmt.Errorf("%w: %w", ErrWalLevel, err)
	case "42501": // insufficient_privilege
		return fmt.Errorf("%w (the role needs REPLICATION and ownership of the keap tables): %w", ErrNoReplication, err)
	case "53400": // configuration_limit_exceeded
		return fmt.Errorf("raise max_replication_slots / max_wal_senders: %w", err)
	case "55006": // object_in_use
		return fmt.Errorf("%w: %w", ErrSlotBusy, err)
	}
	return err
}
