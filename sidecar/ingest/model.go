package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/keapsync/keapsync/sidecar/keap"
)

// sqlApplyModel stores Keap's custom-field model of one type (the model's custom_fields) and
// regenerates the views by label when it changed (see keapsync.apply_custom_field_model).
const sqlApplyModel = `select keapsync.apply_custom_field_model($1, $2, $3::jsonb -> 'custom_fields')`

// refreshModel reads Keap's custom-field model of the kind and stores it. Keap sends no hook when
// a field is added or renamed, so each backfill and reconcile reads it anew: a rename shows in
// the views by label one sweep later, and no value moves (values are keyed by field id).
func (s *Sweeper) refreshModel(ctx context.Context, api Keap, account string, k kind) error {
	raw, err := api.GetModel(ctx, k.model)
	if err != nil {
		return fmt.Errorf("read the %s model: %w", k.objectType, err)
	}
	// A label holding what jsonb refuses (a NUL) is stored as storable makes it, like a record.
	body, _, err := storable(raw)
	if err != nil {
		return fmt.Errorf("the %s model: %w", k.objectType, err)
	}
	var changed int
	if err := s.DB.QueryRow(ctx, sqlApplyModel, account, k.objectType, string(body)).Scan(&changed); err != nil {
		return fmt.Errorf("store the %s model: %w", k.objectType, err)
	}
	if changed > 0 {
		s.Log.Info("custom fields changed in Keap; views by label regenerated", "account", account,
			"type", k.objectType, "fields_changed", changed)
	}
	return nil
}

// withCustomFields adds to records of a type read through v1 (notes, orders: their v1 objects
// carry no custom fields) the custom_fields list Keap's v2 gives the same record (the kind's
// custom). They are read after the records, so they are as new as the versions read or newer: a
// newer value under an older stamp is what the record's next version brings anyway. With since
// set (a hooked batch's listing window), one v2 listing of what changed since then covers the
// batch, a call per 1000 changed; what it does not show, and every record without since (a
// sweep's page, hooked records fetched one by one), is listed by id, keap.IDsPerCall a call. A
// record v2 does not list (deleted meanwhile), or a listing Keap answers unusably, leaves the
// records without the list: their stored values stay as they are (keapsync.keap_unknown).
// Where v2's copy can be put in v1's shape (notes), each record is compared with it: the
// agreement returned says how they compared (see agreement.go). Records read through v2 are
// left as they are.
func withCustomFields(ctx context.Context, log *slog.Logger, api Keap, k kind, recs []record, since time.Time) ([]record, agreement, error) {
	var seen agreement
	if k.custom == nil {
		return recs, seen, nil
	}
	want := map[int64]bool{}
	for _, r := range recs {
		if r.bad == nil && !r.withCustom {
			want[r.id] = true
		}
	}
	if len(want) == 0 {
		return recs, seen, nil
	}
	found := make(map[int64]json.RawMessage, len(want))
	copies := make(map[int64]json.RawMessage, len(want)) // the whole v2 records, where compared
	read := func(q keap.ObjectQuery) error {
		q.Fields, q.PageSize = k.custom.Fields, 1000
		for o, err := range api.Objects(ctx, k.custom.List, q) {
			if _, bad := badRecord(err); bad {
				continue // an item that does not decode: that record goes without the list
			}
			if err != nil {
				return err
			}
			if !want[int64(o.ID)] {
				continue
			}
			var v struct {
				CustomFields json.RawMessage `json:"custom_fields"`
			}
			if json.Unmarshal(o.Raw, &v) == nil && len(v.CustomFields) > 0 {
				found[int64(o.ID)] = v.CustomFields
			}
			if k.asV1 != nil {
				copies[int64(o.ID)] = o.Raw
			}
		}
		return nil
	}
	err := func() error {
		if !since.IsZero() {
			if err := read(keap.ObjectQuery{Since: since, SinceFilter: k.custom.SinceFilter}); err != nil {
				return err
			}
		}
		var missing []keap.ID
		for id := range want {
			if _, ok := found[id]; !ok {
				missing = append(missing, keap.ID(id))
			}
		}
		if len(missing) == 0 {
			return nil
		}
		slices.Sort(missing)
		return read(keap.ObjectQuery{IDs: missing})
	}()
	if listingUnusable(err) {
		log.Warn("Keap's v2 listing of custom fields was unusable; the records keep the values stored",
			"type", k.objectType, "records", len(want), "err", err)
		return recs, seen, nil
	}
	if err != nil {
		return nil, seen, fmt.Errorf("custom fields of %d %ss: %w", len(want), k.objectType, err)
	}
	out := make([]record, len(recs))
	for i, r := range recs {
		out[i] = r
		if cf, ok := found[r.id]; ok && want[r.id] {
			if withCF, err := r.with("custom_fields", cf); err == nil {
				out[i] = withCF
			}
		}
		if v2, ok := copies[r.id]; ok && want[r.id] {
			seen.compare(k, out[i], v2)
		}
	}
	return out, seen, nil
}
