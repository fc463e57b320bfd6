package ingest

import (
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
)

// Directions, as keapsync.sync_directions holds them per account and object type.
const (
	DirectionOff          = "off"
	DirectionKeapToPG     = "keap_to_postgres"
	DirectionBoth         = "both"
	sqlDirectionsOff      = `select object_type from keapsync.sync_directions where account_id = $1 and direction = 'off'`
	sqlDirectionOfOneType = `select coalesce((select direction from keapsync.sync_directions where account_id = $1 and object_type = $2), 'both')`
)

// offTypes are the account's object types that sync not at all.
func offTypes(ctx context.Context, db DB, account string) ([]string, error) {
	rows, err := db.Query(ctx, sqlDirectionsOff, account)
	if err != nil {
		return nil, fmt.Errorf("sync directions of account %s: %w", account, err)
	}
	off, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("sync directions of account %s: %w", account, err)
	}
	return off, nil
}

// kindsToSync resolves the types asked for, less those the account has turned off (the database
// decides; see keapsync.sync_directions).
func (s *Sweeper) kindsToSync(ctx context.Context, account string, objectTypes []string) ([]kind, error) {
	ks, err := kindsOf(objectTypes)
	if err != nil {
		return nil, err
	}
	off, err := offTypes(ctx, s.DB, account)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(ks, func(k kind) bool {
		if slices.Contains(off, k.objectType) {
			s.Log.Info("object type is off for this account; not swept", "account", account, "type", k.objectType)
			return true
		}
		return false
	}), nil
}

// eventKeysFor are the event keys the account needs subscriptions for: those of the types that
// are not off.
func eventKeysFor(ctx context.Context, db DB, account string) ([]string, error) {
	off, err := offTypes(ctx, db, account)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(slices.Clone(EventKeys), func(key string) bool {
		return slices.Contains(off, objectTypeOf(key))
	}), nil
}

// isOff says whether the account has turned the type off (its deliveries are then dropped).
func isOff(ctx context.Context, db pgx.Tx, account, objectType string) (bool, error) {
	var d string
	if err := db.QueryRow(ctx, sqlDirectionOfOneType, account, objectType).Scan(&d); err != nil {
		return false, fmt.Errorf("sync direction of %s for account %s: %w", objectType, account, err)
	}
	return d == DirectionOff, nil
}
