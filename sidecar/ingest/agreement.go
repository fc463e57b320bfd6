package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"maps"
	"reflect"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keapsync/keapsync/sidecar/keap"
)

// A type read through v1 that cannot be filtered by time (notes) costs a batch of hooked changes
// a listing of the whole collection, a call per 1,000 records in the account. Its v2 copy can be
// read by id, keap.IDsPerCall a call, but Keap documents neither that v2's clock has v1's
// precision nor that its fields are v1's under other names (FACTS §7), and Keap's clock orders
// Keap's versions (law 3): a newer version under a coarser stamp would look stale. So keapsync
// finds out per account. Every read that brings both versions of a record (the custom fields of
// a sweep's page or of a hooked batch) compares the v1 record with the v2 one put in v1's shape
// (kind.asV1), and keapsync.v2_agreement keeps the count. While every comparison agreed, and at
// least agreementFloor of them, hooked batches are read through v2 and stored exactly as v1
// would have given them; one difference ends that for the account.

// agreementFloor is how many agreeing pairs it takes: an account with fewer notes lists them
// all in a call or two anyway.
const agreementFloor = 100

// agreement is what one read found comparing v1 records with their v2 copies.
type agreement struct {
	agreed, differed int
	difference       string // the first difference, for a person
	users            users
}

// users are v1's last_updated_by objects by user id, which v2 names by id alone.
type users map[string]json.RawMessage

// lastUpdatedBy is v1's object for the user, nil if no read has met them (kind.asV1 takes it).
func (u users) lastUpdatedBy(id keap.ID) json.RawMessage { return u[id.String()] }

// compare counts one pair: v1 is the record as v1 gave it with v2's custom fields added (as it
// would be stored), v2 the v2 copy. A v2 version stamped after v1's by more than a second
// changed between the two reads and says nothing either way.
func (a *agreement) compare(k kind, v1 record, v2 json.RawMessage) {
	var by struct {
		LastUpdatedBy json.RawMessage `json:"last_updated_by"`
	}
	var user struct {
		UserID *keap.ID `json:"user_id"`
	}
	if json.Unmarshal(v1.raw, &by) == nil && json.Unmarshal(by.LastUpdatedBy, &user) == nil && user.UserID != nil {
		if a.users == nil {
			a.users = users{}
		}
		a.users[user.UserID.String()] = by.LastUpdatedBy
	}
	var clock keap.Object
	if json.Unmarshal(v2, &clock) == nil && clock.Modified().After(v1.modified.Add(time.Second)) {
		return
	}
	asV1, err := k.asV1(v2, a.users.lastUpdatedBy)
	if err == nil {
		err = sameJSON(v1.raw, asV1)
	}
	if err == nil {
		a.agreed++
		return
	}
	if a.differed++; a.difference == "" {
		a.difference = fmt.Sprintf("%s %d: %v", k.objectType, v1.id, err)
	}
}

// sameJSON says how a differs from b as JSON values (nil: not at all).
func sameJSON(a, b json.RawMessage) error {
	var x, y map[string]any
	for _, v := range []struct {
		raw json.RawMessage
		to  *map[string]any
	}{{a, &x}, {b, &y}} {
		d := json.NewDecoder(bytes.NewReader(v.raw))
		d.UseNumber() // numbers as written: 1 and 1.0 differ
		if err := d.Decode(v.to); err != nil {
			return err
		}
	}
	for _, k := range slices.Sorted(maps.Keys(x)) {
		if w, ok := y[k]; !ok || !reflect.DeepEqual(x[k], w) {
			return fmt.Errorf("%s is %s in v1, %s from v2", k, mustJSON(x[k]), mustJSON(w))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(y)) {
		if _, ok := x[k]; !ok {
			return fmt.Errorf("%s is absent in v1, %s from v2", k, mustJSON(y[k]))
		}
	}
	return nil
}

func mustJSON(v any) string {
	if v == nil {
		return "absent or null"
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// sqlAddAgreement adds a read's counts, and returns how many pairs had differed before.
const sqlAddAgreement = `
with before as (select differed from keapsync.v2_agreement where account_id = $1 and object_type = $2)
insert into keapsync.v2_agreement as a (account_id, object_type, agreed, differed, difference, users)
values ($1, $2, $3, $4, nullif($5, ''), $6::jsonb)
on conflict (account_id, object_type) do update
   set agreed = a.agreed + excluded.agreed, differed = a.differed + excluded.differed,
       difference = coalesce(a.difference, excluded.difference), users = a.users || excluded.users,
       updated_at = now()
returning (select coalesce(max(differed), 0) from before)`

// store adds what the read found to the account's counts; the first difference is logged.
func (a agreement) store(ctx context.Context, db execer, log *slog.Logger, account, objectType string) error {
	if a.agreed+a.differed == 0 {
		return nil
	}
	users := []byte("{}") // not null: an object || null would be an array
	if len(a.users) > 0 {
		var err error
		if users, err = json.Marshal(a.users); err != nil {
			return err
		}
	}
	var before int64
	if err := db.QueryRow(ctx, sqlAddAgreement, account, objectType, a.agreed, a.differed, a.difference, string(users)).Scan(&before); err != nil {
		return fmt.Errorf("count how Keap's v2 %ss agree with v1's: %w", objectType, err)
	}
	if before == 0 && a.differed > 0 {
		log.Info("Keap's v2 copy of a record differs from v1's: hooked changes of the type are read through v1",
			"account", account, "type", objectType, "difference", a.difference)
	}
	return nil
}

// sqlAgreement is what the reads found for a type so far.
const sqlAgreement = `
select agreed, differed, users from keapsync.v2_agreement where account_id = $1 and object_type = $2`

// throughV2 is k reading a batch of hooked changes through v2 (see changedAsV1) where the
// account's v2 copies have always agreed with v1's, else k.
func throughV2(ctx context.Context, tx pgx.Tx, account string, k kind) (kind, error) {
	if k.asV1 == nil || k.changed != nil {
		return k, nil
	}
	var agreed, differed int64
	var met users
	err := tx.QueryRow(ctx, sqlAgreement, account, k.objectType).Scan(&agreed, &differed, &met)
	if errors.Is(err, pgx.ErrNoRows) || err == nil && (differed > 0 || agreed < agreementFloor) {
		return k, nil
	}
	if err != nil {
		return k, fmt.Errorf("read how Keap's v2 %ss agree with v1's: %w", k.objectType, err)
	}
	k.changed = changedAsV1(k, met)
	return k, nil
}

// changedAsV1 reads the records ids names through v2 by id and yields them in v1's shape, custom
// fields included. One v2 cannot give in v1's shape (a hostile one, or one whose last updater's
// v1 names are not known here) is left out, for the caller to GET through v1.
func changedAsV1(k kind, met users) func(context.Context, Keap, []int64, time.Time) iter.Seq2[record, error] {
	return func(ctx context.Context, api Keap, ids []int64, _ time.Time) iter.Seq2[record, error] {
		return func(yield func(record, error) bool) {
			if len(ids) == 0 {
				return // no ids is no filter: it would list everything
			}
			q := keap.ObjectQuery{IDs: keapIDs(ids), Fields: k.custom.Fields, PageSize: 1000}
			for r, err := range mapSeq(api.Objects(ctx, k.custom.List, q), objectRecord) {
				if err != nil {
					yield(record{}, err)
					return
				}
				if r.bad != nil {
					continue
				}
				raw, err := k.asV1(r.raw, met.lastUpdatedBy)
				var o keap.Object
				if err != nil || json.Unmarshal(raw, &o) != nil {
					continue
				}
				rec := objectRecord(o)
				rec.withCustom = true
				if !yield(rec, nil) {
					return
				}
			}
		}
	}
}
