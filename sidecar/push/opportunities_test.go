package push_test

import (
	"context"
	"slices"
	"strconv"
	"testing"
)

// Pipeline stages and opportunities inserted, updated and deleted in Postgres reach Keap through
// v2: an opportunity's contact and stage go as contact_id and stage_id (v2 reads them as
// {"contact": {"id"}} and {"stage": {"id"}}), a change of stage is a PATCH of stage_id alone.
func TestPushesOpportunities(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 3)
	ctx := context.Background()
	w.exec(`insert into keapsync.settings (account_id, propagate_deletes) values ($1, true)
	        on conflict (account_id) do update set propagate_deletes = true`, w.account)
	w.start(w.pusher(w.config(nil)).Run)
	w.quiet()
	_, contact := w.synced(0)

	stage := func(name string, order int) int64 {
		id := w.int(`insert into keap.opportunity_stages (account_id, name, stage_order, probability, target_number_days)
		             values ($1, $2, $3, 50, 7) returning id`, w.account, name, order)
		w.quiet()
		kid := w.int(`select coalesce(keap_id, 0) from keap.opportunity_stages where id = $1`, id)
		if kid == 0 {
			t.Fatalf("stage %s: no Keap id written back", name)
		}
		return kid
	}
	open, won := stage("Proposal", 1), stage("Won", 2)
	w.exec(`update keap.opportunity_stages set probability = 60 where keap_id = $1`, open)
	w.quiet()
	if o, err := w.api.GetObject(ctx, "/v2/opportunities/stages", keapID(open)); err != nil || jsonMap(t, o.Raw)["probability"] != 60.0 {
		t.Errorf("the stage's probability did not reach Keap: %v", err)
	}

	w.sb.ClearRequests()
	id := w.int(`insert into keap.opportunities (account_id, title, contact_keap_id, stage_keap_id, projected_revenue_high, estimated_close_time)
	             values ($1, 'Big deal', $2, $3, 2500.50, '2026-05-01T00:00:00Z') returning id`, w.account, contact, open)
	w.quiet()
	kid := w.int(`select coalesce(keap_id, 0) from keap.opportunities where id = $1`, id)
	if kid == 0 {
		t.Fatal("no Keap id written back")
	}
	opp := func() map[string]any {
		o, err := w.api.GetObject(ctx, "/v2/opportunities", keapID(kid))
		if err != nil {
			t.Fatal(err)
		}
		return jsonMap(t, o.Raw)
	}
	got := opp()
	if got["opportunity_title"] != "Big deal" || got["projected_revenue_high"] != 2500.5 ||
		got["contact"].(map[string]any)["id"] != strconv.FormatInt(contact, 10) ||
		got["stage"].(map[string]any)["id"] != strconv.FormatInt(open, 10) || got["estimated_close_time"] != "2026-05-01T00:00:00.000Z" {
		t.Errorf("in Keap: %v", got)
	}
	if calls := w.writes2(); !slices.Equal(calls, []string{"POST /v2/opportunities"}) {
		t.Errorf("calls: %v", calls)
	}

	w.sb.ClearRequests()
	w.exec(`update keap.opportunities set stage_keap_id = $2 where id = $1`, id, won)
	w.quiet()
	if got := opp(); got["stage"].(map[string]any)["id"] != strconv.FormatInt(won, 10) {
		t.Errorf("the stage move did not reach Keap: %v", got)
	}
	if calls := w.writes2(); !slices.Equal(calls, []string{"PATCH /v2/opportunities/" + strconv.FormatInt(kid, 10) + "?update_mask=stage_id"}) {
		t.Errorf("calls: %v", calls)
	}
	if n := w.int(`select count(*) from keapsync.sync_state s where s.object_type in ('opportunity', 'opportunity_stage')
	    and keapsync.pending_push(s.account_id, s.object_type, s.local_id) ->> 'op' <> 'none'`); n != 0 {
		t.Errorf("%d opportunities or stages still differ from what Keap holds", n)
	}

	w.exec(`delete from keap.opportunities where id = $1`, id)
	w.exec(`delete from keap.opportunity_stages where keap_id = $1`, open)
	w.quiet()
	if _, err := w.api.GetObject(ctx, "/v2/opportunities", keapID(kid)); err == nil {
		t.Error("the opportunity deleted here is still in Keap")
	}
	if _, err := w.api.GetObject(ctx, "/v2/opportunities/stages", keapID(open)); err == nil {
		t.Error("the stage deleted here is still in Keap")
	}
}
