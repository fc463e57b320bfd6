package keap

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keapsync/keapsync/sidecar/sandbox"
)

// The generic v2 client against the sandbox's companies: create, read (whole and by fields),
// patch by update_mask, list since a time (one page, and every page), delete; a deleted one is
// ErrNotFound. Keap's clock goes by update_time, or modification_time for tasks.
func TestContractV2Objects(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{sandbox: sandbox.Options{Contacts: 1, Seed: 1}})
	c, ctx := e.client, context.Background()
	const path = "/v2/companies"
	since := e.clock.Now()

	created, err := c.CreateObject(ctx, path, map[string]any{"company_name": "Acme", "notes": "first"})
	if err != nil {
		t.Fatal(err)
	}
	if created.ID == 0 || created.Modified().IsZero() || len(created.Raw) == 0 {
		t.Fatalf("created: %+v", created)
	}
	e.clock.Advance(time.Minute)
	updated, err := c.UpdateObject(ctx, path, created.ID, map[string]any{"company_name": "Acme Ltd", "notes": "ignored"}, "company_name")
	if err != nil {
		t.Fatal(err)
	}
	var fields map[string]any
	if err := json.Unmarshal(updated.Raw, &fields); err != nil {
		t.Fatal(err)
	}
	if fields["company_name"] != "Acme Ltd" || fields["notes"] != "first" || !updated.Modified().After(created.Modified()) {
		t.Errorf("patched by mask: %s", updated.Raw)
	}
	got, err := c.GetObject(ctx, path, created.ID, "company_name")
	if err != nil || got.ID != created.ID {
		t.Fatalf("get: %+v, %v", got, err)
	}

	page, err := c.ListObjects(ctx, path, ObjectQuery{Since: since, PageSize: 1, Fields: []string{"company_name"}})
	if err != nil || len(page.Items) != 1 || page.Items[0].ID != created.ID {
		t.Fatalf("list since the create: %+v, %v", page, err)
	}
	var all []ID
	for o, err := range c.Objects(ctx, path, ObjectQuery{PageSize: 1}) {
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, o.ID)
	}
	if len(all) == 0 || all[len(all)-1] == 0 {
		t.Errorf("every page: %v", all)
	}

	if err := c.DeleteObject(ctx, path, created.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetObject(ctx, path, created.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("after the delete: %v, want ErrNotFound", err)
	}

	task := Object{ModificationTime: Time{Time: since}}
	if !task.Modified().Equal(since) {
		t.Errorf("a task's clock: %v", task.Modified())
	}
}

// A listing by more ids than one request line holds goes out IDsPerCall ids a call, each call
// naming its own ids once and in order, and yields what every call lists; a consumer that stops
// early leaves the later calls unmade.
func TestObjectsByManyIDsSplitsTheCalls(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var calls [][]string
	c := standIn(t, func(w http.ResponseWriter, r *http.Request) {
		ids := strings.Split(strings.TrimPrefix(r.URL.Query().Get("filter"), "product_ids=="), ",")
		mu.Lock()
		calls = append(calls, ids)
		mu.Unlock()
		items := make([]map[string]string, len(ids))
		for i, id := range ids {
			items[i] = map[string]string{"id": id}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"products": items})
	})
	ids := make([]ID, 2*IDsPerCall+7)
	for i := range ids {
		ids[i] = ID(i + 1)
	}
	q := ObjectQuery{IDs: ids, IDsFilter: "product_ids"}
	var got []ID
	for o, err := range c.Objects(context.Background(), "/v2/products", q) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, o.ID)
	}
	if !slices.Equal(got, ids) || len(calls) != 3 || len(calls[0]) != IDsPerCall || len(calls[2]) != 7 || calls[1][0] != strconv.Itoa(IDsPerCall+1) {
		t.Fatalf("%d objects from %d calls (sizes %d, ...), want all %d from 3 calls of at most %d", len(got), len(calls), len(calls[0]), len(ids), IDsPerCall)
	}
	calls = nil
	for range c.Objects(context.Background(), "/v2/products", q) {
		break
	}
	if len(calls) != 1 {
		t.Errorf("a consumer that stopped at the first object cost %d calls", len(calls))
	}
}
