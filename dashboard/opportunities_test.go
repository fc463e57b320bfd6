package dashboard

import (
	"encoding/json"
	"strings"
	"testing"
)

// The overview shows the account's open pipeline (a card and a chart by stage) and what was won
// and lost per month; the Data tab lists opportunities with their stage and outcome; the API's
// kpis carry the same numbers, valid against its OpenAPI document. Another account's deals count
// nowhere.
func TestOverviewOpportunities(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// Before any deal, the chart by stage says so in its own words (it once said "No tags applied yet.").
	if _, body := e.as(adminA).get("/"); !strings.Contains(body, "No open opportunities yet.") {
		t.Error("the overview's empty pipeline chart does not say there are no open opportunities")
	}
	for _, q := range []string{
		`with a as (select $1::uuid as id, 'Discovery' as name, 1500 as big union all select $2::uuid, 'Discovery', 999999)
	  select keapsync.apply_keap_record(a.id, 'opportunity_stage', jsonb_build_object('id', '1', 'name', a.name, 'order', 1,
	           'updated_time', '2026-01-01T00:00:00.000Z')),
	         keapsync.apply_keap_record(a.id, 'opportunity_stage', jsonb_build_object('id', '2', 'name', 'Won', 'order', 2,
	           'updated_time', '2026-01-01T00:00:00.000Z')),
	         keapsync.apply_keap_record(a.id, 'opportunity', jsonb_build_object('id', '1', 'opportunity_title', 'Deal one',
	           'contact', jsonb_build_object('id', '1001'), 'stage', jsonb_build_object('id', '1'), 'projected_revenue_high', a.big,
	           'last_updated_time', '2026-01-02T00:00:00.000Z'))
	    from a`,
		`select keapsync.apply_keap_record($1, 'opportunity', jsonb_build_object('id', '2', 'opportunity_title', 'Deal two',
	           'contact', jsonb_build_object('id', '1001'), 'stage', jsonb_build_object('id', '1'), 'projected_revenue_low', 250,
	           'last_updated_time', '2026-01-02T00:00:00.000Z'))`,
		`select keapsync.apply_keap_record($1, 'opportunity', jsonb_build_object('id', '3', 'opportunity_title', 'Deal won',
	           'contact', jsonb_build_object('id', '1001'), 'stage', jsonb_build_object('id', '2'), 'projected_revenue_high', 4000,
	           'last_updated_time', to_char(now() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')))`,
	} {
		args := []any{accountA, accountB}[:strings.Count(q, "$2")+1] // only the first names account B
		if _, err := e.db.Exec(t.Context(), q, args...); err != nil {
			t.Fatal(err)
		}
	}

	_, body := e.as(adminA).get("/")
	for _, want := range []string{
		`data-kpi="pipeline">$1,750.00</span>`, "2 open opportunities", "Open pipeline by stage",
		"$1,750.00 · 2 open", "Opportunities won and lost per month", "1 won, $4,000.00",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("overview lacks %q", want)
		}
	}
	if strings.Contains(body, "999,999") {
		t.Error("account B's deal shows in account A's overview")
	}
	if _, body = e.as(adminB).get("/?fragment=kpis"); !strings.Contains(body, `data-kpi="pipeline">$999,999.00</span>`) {
		t.Errorf("account B's pipeline card:\n%s", body)
	}

	_, body = e.as(viewerA).get("/data/opportunities?outcome=won&account=" + accountA)
	if !strings.Contains(body, "<td>Deal won</td>") || strings.Contains(body, "<td>Deal one</td>") ||
		!strings.Contains(body, `aria-current="page">Opportunities</a>`) {
		t.Errorf("the won opportunities tab:\n%s", body)
	}
	_, body = e.as(viewerA).get("/data/opportunities?stage=Discovery&sort=value&dir=desc&account=" + accountA)
	if i, j := strings.Index(body, "<td>Deal one</td>"), strings.Index(body, "<td>Deal two</td>"); i < 0 || j < 0 || i > j ||
		strings.Contains(body, "<td>Deal won</td>") {
		t.Errorf("the Discovery stage by value:\n%s", body)
	}

	code, _, raw := newAPIClient(t, e.ts.URL, e.token(adminA)).get("/api/v1/accounts/" + accountA + "/kpis")
	var k kpis
	if err := json.Unmarshal(raw, &k); code != 200 || err != nil {
		t.Fatalf("kpis: %d %v %s", code, err, raw)
	}
	if k.OpenValue != 1750 || k.OpenDeals != 2 || len(k.Pipeline) != 1 || k.Pipeline[0].Stage != "Discovery" ||
		len(k.WonLost) != 12 || k.WonLost[11].Won != 1 || k.WonLost[11].WonValue != 4000 || !k.WonLost[11].Partial {
		t.Errorf("kpis: %+v", k)
	}
}
