package ingest_test

import (
	"context"
	"testing"
)

// A hook naming one subscription or one tag fetches just that object and applies it: a
// subscription cancelled in Keap shows inactive here, a tag created there appears here.
func TestHookForOneSubscriptionOrTagBringsItIn(t *testing.T) {
	t.Parallel()
	w := newWorld(t, 10)
	ctx := context.Background()
	if err := w.sweeper.Backfill(ctx, w.account, []string{"contact", "tag", "product", "subscription"}); err != nil {
		t.Fatal(err)
	}
	subs := w.sb.Snapshot().Subscriptions
	if len(subs) == 0 {
		t.Fatal("the sandbox generated no subscription")
	}
	sub := idOf(t, subs[0])
	if got := w.count(t, `select count(*) from keap.subscriptions where keap_id = $1 and active`, sub); got != 1 {
		t.Fatalf("subscription %d is not active here before the test", sub)
	}
	if err := w.sb.SetSubscriptionActive(sub, false); err != nil {
		t.Fatal(err)
	}
	tag, err := w.sb.CreateTag("Renewed in 2027", "made in Keap after the backfill")
	if err != nil {
		t.Fatal(err)
	}
	w.deliver(t, "subscription.edit", sub)
	w.deliver(t, "contactGroup.add", tag)
	w.sb.ClearRequests()
	w.worker.Window = 0
	w.drain(t)
	if got := w.count(t, `select count(*) from keap.subscriptions where keap_id = $1 and not active`, sub); got != 1 {
		t.Error("the cancelled subscription is still active here")
	}
	if got := w.count(t, `select count(*) from keap.tags where keap_id = $1 and name = 'Renewed in 2027'`, tag); got != 1 {
		t.Error("the tag created in Keap did not arrive")
	}
	for _, r := range w.sb.Requests() {
		if r.Method == "GET" && (r.Path == "/crm/rest/v1/tags" || r.Path == "/crm/rest/v2/subscriptions") {
			t.Errorf("one object named, yet the whole collection was listed: %s %s", r.Method, r.Path)
		}
	}
}
