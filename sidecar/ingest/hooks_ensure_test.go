package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keapsync/keapsync/sidecar/devtools/pgtest"
	"github.com/keapsync/keapsync/sidecar/ingest"
	"github.com/keapsync/keapsync/sidecar/keap"
	"github.com/keapsync/keapsync/sidecar/objecttype"
)

// keapHooks is Keap's hook API as EnsureHooks sees it, in memory: the subscriptions Keap holds,
// which event keys it offers, what a re-verification finds, and the calls that fail.
type keapHooks struct {
	offered  []string
	hooks    []keap.Hook
	verifies map[string]string // key → status a re-verification leaves it in (default Verified)
	fail     map[string]error  // method → its answer
	okBefore map[string]int    // method → calls that succeed before fail applies
	calls    []string
	next     int
}

func (k *keapHooks) call(method string) error {
	k.calls = append(k.calls, method)
	if k.okBefore[method] > 0 {
		k.okBefore[method]--
		return nil
	}
	return k.fail[method]
}

func (k *keapHooks) HookEventKeys(context.Context) ([]string, error) {
	if err := k.call("HookEventKeys"); err != nil {
		return nil, err
	}
	return k.offered, nil
}

func (k *keapHooks) ListHooks(context.Context) ([]keap.Hook, error) {
	if err := k.call("ListHooks"); err != nil {
		return nil, err
	}
	return slices.Clone(k.hooks), nil
}

func (k *keapHooks) CreateHook(_ context.Context, eventKey, hookURL string) (*keap.Hook, error) {
	if err := k.call("CreateHook"); err != nil {
		return nil, err
	}
	k.next++
	h := keap.Hook{Key: fmt.Sprintf("new-%d", k.next), EventKey: eventKey, HookURL: hookURL, Status: keap.HookVerified}
	k.hooks = append(k.hooks, h)
	return &h, nil
}

func (k *keapHooks) VerifyHook(_ context.Context, key string) (*keap.Hook, error) {
	if err := k.call("VerifyHook"); err != nil {
		return nil, err
	}
	for i, h := range k.hooks {
		if h.Key == key {
			k.hooks[i].Status = keap.HookVerified
			if s, ok := k.verifies[key]; ok {
				k.hooks[i].Status = s
			}
			h = k.hooks[i]
			return &h, nil
		}
	}
	return nil, &keap.APIError{Status: 404, Body: []byte(`{"message":"no such hook"}`)}
}

func (k *keapHooks) DeleteHook(_ context.Context, key string) error {
	if err := k.call("DeleteHook"); err != nil {
		return err
	}
	k.hooks = slices.DeleteFunc(k.hooks, func(h keap.Hook) bool { return h.Key == key })
	return nil
}

// at is the subscriptions Keap holds at url, by event key.
func (k *keapHooks) at(url string) map[string][]keap.Hook {
	out := map[string][]keap.Hook{}
	for _, h := range k.hooks {
		if ingest.SameHookURL(h.HookURL, url) {
			out[h.EventKey] = append(out[h.EventKey], h)
		}
	}
	return out
}

// hookAccount is a fresh database with one account, and that account's hook URL.
func hookAccount(t *testing.T) (db *pgxpool.Pool, account, url string) {
	t.Helper()
	ctx := context.Background()
	db = pgtest.Pool(t)
	if err := db.QueryRow(ctx, `insert into keapsync.accounts (name) values ('Hooks') returning id`).Scan(&account); err != nil {
		t.Fatal(err)
	}
	url, err := ingest.HookURL(ctx, db, account, publicURL)
	if err != nil {
		t.Fatal(err)
	}
	return db, account, url
}

const publicURL = "https://sync.example.com/"

// recorded is what keapsync.hook_subscriptions holds for the account: key → event and status.
func recorded(t *testing.T, db *pgxpool.Pool, account string) map[string]string {
	t.Helper()
	rows, err := db.Query(context.Background(), `select hook_key, event_key || ' ' || status from keapsync.hook_subscriptions where account_id = $1`, account)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			t.Fatal(err)
		}
		out[k] = v
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// What Keap holds after a while: copies of one event (one Inactive after failed deliveries),
// subscriptions Keap marked Inactive, keapsync's own at a URL it retired or for a type the
// account turned off, and somebody else's. EnsureHooks keeps the copy that delivers, re-verifies
// the Inactive ones (reporting those that stay so), removes keapsync's extras, leaves the
// stranger's alone, skips the events this Keap app does not offer, and records exactly what it
// kept.
func TestEnsureHooksTidiesWhatKeapHolds(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, account, url := hookAccount(t)
	if _, err := db.Exec(ctx, `update keapsync.sync_directions set direction = 'off' where account_id = $1 and object_type = 'order'`, account); err != nil {
		t.Fatal(err)
	}
	offered := slices.DeleteFunc(slices.Clone(ingest.EventKeys), func(ev string) bool { return ev == "opportunity.stage_move" })
	var want []string
	for _, ev := range offered {
		if objecttype.OfEvent(ev) != "order" {
			want = append(want, ev)
		}
	}
	stranger := keap.Hook{Key: "k7", EventKey: "contact.edit", HookURL: "https://elsewhere.example.com/hooks/x", Status: keap.HookVerified}
	api := &keapHooks{
		offered: offered,
		hooks: []keap.Hook{
			{Key: "k1", EventKey: "contact.add", HookURL: url, Status: keap.HookInactive},
			{Key: "k2", EventKey: "contact.add", HookURL: strings.Replace(url, "https://sync", "HTTPS://SYNC", 1) + "/", Status: keap.HookVerified},
			{Key: "k3", EventKey: "contact.edit", HookURL: url, Status: keap.HookInactive},
			{Key: "k4", EventKey: "contact.delete", HookURL: url, Status: keap.HookInactive},
			{Key: "k5", EventKey: "order.add", HookURL: url, Status: keap.HookVerified},
			{Key: "k6", EventKey: "contact.edit", HookURL: "https://sync.example.com/hooks/a-retired-token", Status: keap.HookVerified},
			stranger,
		},
		verifies: map[string]string{"k4": keap.HookInactive},
	}
	rep, err := ingest.EnsureHooks(ctx, db, api, account, publicURL)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Removed != 3 || rep.Reverified != 2 || rep.Created != len(want)-3 || rep.Verified != len(want)-1 ||
		!slices.Equal(rep.Unverified, []string{"contact.delete"}) {
		t.Errorf("report %+v; want 3 removed (k1, k5, k6), 2 re-verified, %d created, %d verified, contact.delete unverified",
			rep, len(want)-3, len(want)-1)
	}
	held := api.at(url)
	for _, ev := range want {
		if len(held[ev]) != 1 {
			t.Errorf("%s: Keap holds %d subscriptions at the hook URL, want 1", ev, len(held[ev]))
		}
	}
	if len(held) != len(want) {
		t.Errorf("Keap holds subscriptions for %d events at the hook URL, want %d (none for orders, none not offered)", len(held), len(want))
	}
	if h := held["contact.add"]; len(h) == 1 && h[0].Key != "k2" {
		t.Errorf("kept %s for contact.add; want k2, the copy that delivers", h[0].Key)
	}
	if !slices.ContainsFunc(api.hooks, func(h keap.Hook) bool { return h.Key == stranger.Key }) {
		t.Error("a subscription at somebody else's URL was removed")
	}
	rec := recorded(t, db, account)
	if len(rec) != len(want) || rec["k2"] != "contact.add Verified" || rec["k3"] != "contact.edit Verified" || rec["k4"] != "contact.delete Inactive" {
		t.Errorf("hook_subscriptions: %v; want the %d kept, with their statuses", rec, len(want))
	}
	for _, gone := range []string{"k1", "k5", "k6", "k7"} {
		if _, ok := rec[gone]; ok {
			t.Errorf("hook_subscriptions records %s, which is not keapsync's subscription", gone)
		}
	}

	// A second run finds everything in place: no create, no delete, and a hook that a third
	// party deleted meanwhile (404 on our delete) is not an error.
	api.calls = nil
	rep, err = ingest.EnsureHooks(ctx, db, api, account, publicURL)
	if err != nil || rep.Created != 0 || rep.Removed != 0 {
		t.Fatalf("second run: %+v, %v; want nothing created or removed", rep, err)
	}
	if slices.Contains(api.calls, "CreateHook") || slices.Contains(api.calls, "DeleteHook") {
		t.Errorf("second run called %v", api.calls)
	}
	api.hooks = append(api.hooks, keap.Hook{Key: "k8", EventKey: "contact.add", HookURL: url, Status: keap.HookInactive})
	api.fail = map[string]error{"DeleteHook": &keap.APIError{Status: 404, Body: []byte(`{"message":"Hook not found"}`)}}
	if rep, err = ingest.EnsureHooks(ctx, db, api, account, publicURL); err != nil || rep.Removed != 1 {
		t.Errorf("a copy already gone when deleted: %+v, %v; want it counted removed, no error", rep, err)
	}
}

// When Keap refuses any step, EnsureHooks says which and records nothing: the subscriptions
// recorded are those of the last run that finished, and the next run finishes the job without
// creating twice what the failed run created.
func TestEnsureHooksKeapRefusalRecordsNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	down := &keap.APIError{Status: 503, Message: "Service Unavailable", Body: []byte(`{"message":"down"}`)}
	for _, tc := range []struct {
		method, says string
		setup        func(api *keapHooks)
	}{
		{"HookEventKeys", "list Keap's event keys", nil},
		{"ListHooks", "list hooks", nil},
		{"DeleteHook", "delete extra hook", func(api *keapHooks) {
			dup := api.hooks[0]
			dup.Key, dup.Status = "dup", keap.HookInactive
			api.hooks = append(api.hooks, dup)
		}},
		{"VerifyHook", "re-verify " + ingest.EventKeys[0], func(api *keapHooks) {
			api.hooks[0].Status = keap.HookInactive
		}},
		{"CreateHook", "subscribe to", func(api *keapHooks) {
			api.okBefore = map[string]int{"CreateHook": 2} // two made in Keap before the failure
		}},
	} {
		t.Run(tc.method, func(t *testing.T) {
			t.Parallel()
			db, account, url := hookAccount(t)
			// A finished run first; then Keap loses every subscription but the test's own.
			api := &keapHooks{offered: ingest.EventKeys}
			if _, err := ingest.EnsureHooks(ctx, db, api, account, publicURL); err != nil {
				t.Fatal(err)
			}
			before := recorded(t, db, account)
			api.hooks = api.hooks[:3]
			if tc.setup != nil {
				tc.setup(api)
			}
			api.fail = map[string]error{tc.method: down}
			_, err := ingest.EnsureHooks(ctx, db, api, account, publicURL)
			if !errors.Is(err, keap.ErrServer) || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("EnsureHooks with Keap failing %s: %v; want Keap's 503, saying %q", tc.method, err, tc.says)
			}
			if got := recorded(t, db, account); !maps.Equal(got, before) {
				t.Errorf("hook_subscriptions changed by a failed run:\n got  %v\n want %v", got, before)
			}
			api.fail = nil
			creates := func() int {
				n := 0
				for _, c := range api.calls {
					if c == "CreateHook" {
						n++
					}
				}
				return n
			}
			api.calls = nil
			if _, err := ingest.EnsureHooks(ctx, db, api, account, publicURL); err != nil {
				t.Fatal(err)
			}
			held := api.at(url)
			for _, ev := range ingest.EventKeys {
				if len(held[ev]) != 1 {
					t.Errorf("after the next run, Keap holds %d %s subscriptions, want 1", len(held[ev]), ev)
				}
			}
			if got := recorded(t, db, account); len(got) != len(ingest.EventKeys) {
				t.Errorf("after the next run, %d subscriptions recorded, want %d", len(got), len(ingest.EventKeys))
			}
			if tc.method == "CreateHook" && creates() != len(ingest.EventKeys)-5 {
				t.Errorf("the next run made %d creates; want %d, the ones still missing", creates(), len(ingest.EventKeys)-5)
			}
		})
	}
}

// With the database away, EnsureHooks fails before it asks Keap anything: it could record none
// of what it would change there.
func TestEnsureHooksDeadDatabaseTouchesNothingInKeap(t *testing.T) {
	t.Parallel()
	db, account, _ := hookAccount(t)
	db.Close()
	api := &keapHooks{offered: ingest.EventKeys}
	if _, err := ingest.EnsureHooks(context.Background(), db, api, account, publicURL); err == nil || !strings.Contains(err.Error(), "hook endpoint") {
		t.Fatalf("EnsureHooks with the database closed: %v; want the hook endpoint's error", err)
	}
	if len(api.calls) != 0 {
		t.Errorf("Keap was called (%v) though nothing could be recorded", api.calls)
	}
}
