package sandbox

import (
	"fmt"
	"slices"
	"strconv"
	"testing"
)

// TestOpportunityHooks: an opportunity's life in Keap fires opportunity.add, .edit, .stage_move
// (a stage change, alone when nothing else changed) and .delete, each naming the opportunity's
// v2 resource; a stage with opportunities in it cannot be deleted.
func TestOpportunityHooks(t *testing.T) {
	t.Parallel()
	srv, _ := start(t, Options{Contacts: 1})
	c := newClient(t, srv, false)
	rcv := newReceiver(t, true)
	for _, k := range []string{"opportunity.add", "opportunity.edit", "opportunity.stage_move", "opportunity.delete"} {
		subscribe(t, c, k, rcv.URL)
	}
	s1, err := srv.CreateOpportunityStage(map[string]any{"name": "New", "order": 1, "probability": 10, "target_number_days": 3})
	if err != nil {
		t.Fatal(err)
	}
	s2, err := srv.CreateOpportunityStage(map[string]any{"name": "Won", "order": 2, "probability": 100, "target_number_days": 0})
	if err != nil {
		t.Fatal(err)
	}
	id, err := srv.CreateOpportunity(map[string]any{"opportunity_title": "Deal", "contact_id": "1", "stage_id": strconv.FormatInt(s1, 10)})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.EditOpportunity(id, map[string]any{"projected_revenue_high": 500}); err != nil {
		t.Fatal(err)
	}
	if err := srv.MoveOpportunity(id, s2); err != nil {
		t.Fatal(err)
	}
	if err := srv.DeleteOpportunityStage(s2); err == nil {
		t.Fatal("a stage with an opportunity in it was deleted")
	}
	if err := srv.EditOpportunity(id, map[string]any{"stage_id": "999"}); err == nil {
		t.Fatal("moved to a stage that does not exist")
	}
	if err := srv.DeleteOpportunity(id); err != nil {
		t.Fatal(err)
	}
	settle(t, srv)
	var keys []string
	for _, p := range rcv.deliveries() {
		for _, k := range p.ObjectKeys {
			if p.ObjectType != "opportunity" || k.ID != id || k.APIURL != fmt.Sprintf("%s/crm/rest/v2/opportunities/%d", srv.URL(), id) {
				t.Fatalf("delivery %+v", p)
			}
		}
		keys = append(keys, p.EventKey)
	}
	slices.Sort(keys)
	if want := []string{"opportunity.add", "opportunity.delete", "opportunity.edit", "opportunity.stage_move"}; !slices.Equal(keys, want) {
		t.Fatalf("events %v, want %v", keys, want)
	}
}
