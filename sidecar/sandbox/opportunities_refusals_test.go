package sandbox

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// Keap's v2 opportunity and stage endpoints refuse what Keap refuses (a probability outside
// 0..100, negative target days, a stage without its required fields, an unknown contact, a
// filter or order it does not offer, an opportunity that is not there) and order and page the
// listing as asked.
func TestOpportunityEndpointsRefuseAndOrderAsKeapDoes(t *testing.T) {
	t.Parallel()
	srv, _ := start(t, Options{Contacts: 5, Seed: 9})
	raw := newClient(t, srv, true) // refused requests on purpose
	const v2 = "/crm/rest/v2/opportunities"
	stage := map[string]any{"name": "S", "order": 1, "probability": 10, "target_number_days": 3}
	with := func(k string, v any) map[string]any {
		m := map[string]any{}
		for key, val := range stage {
			m[key] = val
		}
		m[k] = v
		return m
	}
	for says, fields := range map[string]map[string]any{
		"probability must be an integer between 0 and 100": with("probability", 150),
		"target_number_days must be >= 0":                  with("target_number_days", -1),
		"are required":                                     {"name": "S"},
	} {
		if _, err := srv.CreateOpportunityStage(fields); err == nil || !strings.Contains(err.Error(), says) {
			t.Errorf("stage %v: %v; want it refused saying %q", fields, err, says)
		}
	}
	stageID, err := srv.CreateOpportunityStage(stage)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.EditOpportunityStage(stageID, map[string]any{"probability": -5}); err == nil {
		t.Error("a stage edited to probability -5 was accepted")
	}
	stageRef := fmt.Sprint(stageID)
	before, _ := json.Marshal(srv.Snapshot())
	refused(t, raw, []refusal{
		{"GET", v2 + "/stages?filter=name==x", nil, 400, "Invalid filter"},
		{"GET", v2 + "/stages?order_by=name", nil, 400, "Invalid order_by"},
		{"POST", v2, map[string]any{"opportunity_title": "X", "contact_id": "99999", "stage_id": stageRef}, 400, "Contact not found: 99999"},
		{"GET", v2 + "?filter=title==x", nil, 400, "Invalid filter"},
		{"GET", v2 + "?order_by=estimated_close_time", nil, 400, "Invalid order_by"},
		{"GET", v2 + "/99999", nil, 404, "Opportunity with ID 99999 not found"},
	})
	if after, _ := json.Marshal(srv.Snapshot()); string(after) != string(before) {
		t.Error("a refused request changed the sandbox's state")
	}

	for _, title := range []string{"Bravo", "Alpha", "Charlie"} {
		if _, err := srv.CreateOpportunity(map[string]any{"opportunity_title": title, "contact_id": "1", "stage_id": stageRef}); err != nil {
			t.Fatal(err)
		}
	}
	c := newClient(t, srv, false)
	var titles []string
	path := v2 + "?order_by=opportunity_title%20desc&page_size=1&filter=contact_id==1"
	for pages := 0; path != "" && pages < 20; pages++ {
		var page struct {
			Opportunities []struct {
				Title string `json:"opportunity_title"`
			} `json:"opportunities"`
			Next string `json:"next_page_token"`
		}
		c.json("GET", path, nil, 200, &page)
		for _, o := range page.Opportunities {
			titles = append(titles, o.Title)
		}
		path = ""
		if page.Next != "" {
			path = fmt.Sprintf("%s?order_by=opportunity_title%%20desc&page_size=1&filter=contact_id==1&page_token=%s", v2, page.Next)
		}
	}
	if !slices.IsSortedFunc(titles, func(a, b string) int { return strings.Compare(b, a) }) || !slices.Contains(titles, "Alpha") ||
		!slices.Contains(titles, "Charlie") || !slices.Contains(titles, "Bravo") {
		t.Errorf("contact 1's opportunities by title, descending, a page at a time: %v", titles)
	}
}
