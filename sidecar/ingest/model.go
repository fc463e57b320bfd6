package ingest

import (
	"context"
	"fmt"
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
