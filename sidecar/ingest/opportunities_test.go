package ingest_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/keapsync/keapsync/sidecar/ingest"
)

// Opportunities and their stages arrive by backfill; opportunities created, edited, moved to
// another stage and deleted as a person in Keap arrive by hooks (stage_move included), the
// won/lost KPI counts the move, and lost hooks are caught by reconcile and the delete sweep.
func TestOpportunitiesArrive(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 3)
	ctx := context.Background()
	contact := idOf(t, w.sb.Snapshot().Contacts[0])
	cid := strconv.FormatInt(contact, 10)
	stage := func(name string, order int) int64 {
		id, err := w.sb.CreateOpportunityStage(map[string]any{"name": name, "order": order, "probability": 10 * order, "target_number_days": 5})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	open, won := stage("Qualified", 1), stage("Won", 2)
	first, err := w.sb.CreateOpportunity(map[string]any{"opportunity_title": "Deal", "contact_id": cid,
		"stage_id": strconv.FormatInt(open, 10), "projected_revenue_high": 1000})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.sweeper.Backfill(ctx, w.account, ingest.ObjectTypes); err != nil {
		t.Fatal(err)
	}
	if got := w.count(t, `select count(*) from keap.opportunities o
	    join keap.contacts c on c.account_id = o.account_id and c.keap_id = o.contact_keap_id
	    join keap.opportunity_stages s on s.account_id = o.account_id and s.keap_id = o.stage_keap_id
	   where o.keap_id = $1 and o.title = 'Deal' and o.projected_revenue_high = 1000 and c.keap_id = $2
	     and s.name = 'Qualified' and s.outcome = 'open' and o.stage_moved_at = o.last_updated_time`, first, contact); got != 1 {
		t.Fatal("the backfilled opportunity is not here, on its contact and stage")
	}
	if got := w.count(t, `select count(*) from keap.opportunity_stages where keap_id = $1 and outcome = 'won' and probability = 20`, won); got != 1 {
		t.Error("the Won stage is not here as a won stage")
	}
	if _, err := ingest.EnsureHooks(ctx, w.db, w.api, w.account, w.hooks.URL); err != nil {
		t.Fatal(err)
	}
	second, err := w.sb.CreateOpportunity(map[string]any{"opportunity_title": "Small deal", "contact_id": cid, "stage_id": strconv.FormatInt(open, 10)})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.sb.EditOpportunity(first, map[string]any{"opportunity_notes": "call Tue"}); err != nil {
		t.Fatal(err)
	}
	w.settle(t)
	if got := w.count(t, `select count(*) from keap.opportunities where keap_id = $1 and notes = 'call Tue'`, first); got != 1 {
		t.Error("the edit did not arrive")
	}
	if got := w.count(t, `select count(*) from keap.opportunities where keap_id = $1 and title = 'Small deal'`, second); got != 1 {
		t.Error("the new opportunity did not arrive")
	}
	if err := w.sb.MoveOpportunity(first, won); err != nil { // fires opportunity.stage_move only
		t.Fatal(err)
	}
	w.settle(t)
	if got := w.count(t, `select count(*) from keap.opportunities where keap_id = $1 and stage_keap_id = $2
	    and stage_moved_at = last_updated_time`, first, won); got != 1 {
		t.Error("the stage move did not arrive")
	}
	if got := w.count(t, `select count(*) from keapsync.kpi_opportunities_monthly where account_id = $1 and won = 1 and lost = 0
	    and won_value = 1000`, w.account); got != 1 {
		t.Error("the won opportunity is not in the won/lost KPI")
	}
	if err := w.sb.DeleteOpportunity(second); err != nil {
		t.Fatal(err)
	}
	w.settle(t)
	if got := w.count(t, `select count(*) from keap.opportunities where keap_id = $1`, second); got != 0 {
		t.Error("the deleted opportunity is still here")
	}

	for _, h := range w.sb.Hooks() {
		if err := w.api.DeleteHook(ctx, h.Key); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.sb.MoveOpportunity(first, open); err != nil {
		t.Fatal(err)
	}
	if err := w.sb.EditOpportunityStage(open, map[string]any{"name": "Qualified lead"}); err != nil {
		t.Fatal(err)
	}
	if err := w.sweeper.Reconcile(ctx, w.account, []string{"opportunity_stage", "opportunity"}); err != nil {
		t.Fatal(err)
	}
	if got := w.count(t, `select count(*) from keap.opportunities o join keap.opportunity_stages s
	    on s.account_id = o.account_id and s.keap_id = o.stage_keap_id where o.keap_id = $1 and s.name = 'Qualified lead'`, first); got != 1 {
		t.Error("reconcile did not catch the stage move whose hook was lost, or the stage's rename")
	}
	if err := w.sb.DeleteOpportunity(first); err != nil {
		t.Fatal(err)
	}
	w.sweptAway(t, "opportunity", "opportunities", first)
}

// A pipeline stage deleted in Keap leaves here too. Keap sends no hook about stages, so only the
// delete sweep can see it go; the stage kept is left alone.
func TestOpportunityStageDeletedInKeap(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 2)
	ctx := context.Background()
	keep, err := w.sb.CreateOpportunityStage(map[string]any{"name": "Keep", "order": 1, "probability": 10, "target_number_days": 5})
	if err != nil {
		t.Fatal(err)
	}
	gone, err := w.sb.CreateOpportunityStage(map[string]any{"name": "Gone", "order": 2, "probability": 20, "target_number_days": 5})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.sweeper.Backfill(ctx, w.account, ingest.ObjectTypes); err != nil {
		t.Fatal(err)
	}
	if got := w.count(t, `select count(*) from keap.opportunity_stages where keap_id = any($1)`, []int64{keep, gone}); got != 2 {
		t.Fatalf("%d of the 2 stages backfilled", got)
	}
	if err := w.sb.DeleteOpportunityStage(gone); err != nil {
		t.Fatal(err)
	}
	w.sweptAway(t, "opportunity_stage", "opportunity_stages", gone)
	if got := w.count(t, `select count(*) from keap.opportunity_stages where keap_id = $1 and name = 'Keep'`, keep); got != 1 {
		t.Error("the stage kept in Keap is gone")
	}
}
