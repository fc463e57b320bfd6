package ingest

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/keapsync/keapsync/sidecar/keap"
)

// EventKeys are the Keap events keapsync subscribes to (one subscription each).
var EventKeys = []string{
	"contact.add", "contact.edit", "contact.delete",
	"contactGroup.applied", "contactGroup.removed",
	"contactGroup.add", "contactGroup.edit", "contactGroup.delete",
	"order.add", "order.edit", "order.delete",
	// A payment may leave the order's modification_date and order.edit alone (FACTS §7); these
	// name the invoice, which in v1 is the order.
	"invoice.payment.add", "invoice.payment.edit", "invoice.payment.delete",
	"subscription.add", "subscription.edit", "subscription.delete",
}

// HookAPI is what hook management needs of the Keap client.
type HookAPI interface {
	HookEventKeys(ctx context.Context) ([]string, error)
	ListHooks(ctx context.Context) ([]keap.Hook, error)
	CreateHook(ctx context.Context, eventKey, hookURL string) (*keap.Hook, error)
	VerifyHook(ctx context.Context, key string) (*keap.Hook, error)
	DeleteHook(ctx context.Context, key string) error
}

const (
	sqlEnsureEndpoint = `
insert into keapsync.hook_endpoints (account_id) values ($1)
on conflict (account_id) do update set account_id = excluded.account_id
returning path_token`
	sqlUpsertHook = `
insert into keapsync.hook_subscriptions (account_id, hook_key, event_key, hook_url, status, verified_at)
values ($1, $2, $3, $4, $5, case when $5 = 'Verified' then now() end)
on conflict (account_id, hook_key) do update
   set event_key = excluded.event_key, hook_url = excluded.hook_url, status = excluded.status,
       verified_at = coalesce(excluded.verified_at, keapsync.hook_subscriptions.verified_at), updated_at = now()`
	sqlForgetHooks = `delete from keapsync.hook_subscriptions where account_id = $1 and not (hook_key = any ($2))`
)

// HookURL is the account's unguessable delivery URL under publicURL, created on first use.
func HookURL(ctx context.Context, db DB, account, publicURL string) (string, error) {
	var token string
	if err := db.QueryRow(ctx, sqlEnsureEndpoint, account).Scan(&token); err != nil {
		return "", fmt.Errorf("hook endpoint of account %s: %w", account, err)
	}
	return strings.TrimRight(publicURL, "/") + "/hooks/" + token, nil
}

// HookReport says what EnsureHooks did.
type HookReport struct {
	Created, Reverified, Removed, Verified int
	Unverified                             []string // event keys Keap could not verify
}

// EnsureHooks subscribes the account to every event key keapsync needs at its hook URL,
// re-verifies subscriptions that are not Verified (Keap marks them Inactive after failed
// deliveries), removes keapsync's subscriptions at stale URLs, and records the result. The
// receiver must be reachable at publicURL: Keap verifies during the create call.
func EnsureHooks(ctx context.Context, db DB, api HookAPI, account, publicURL string) (HookReport, error) {
	var rep HookReport
	url, err := HookURL(ctx, db, account, publicURL)
	if err != nil {
		return rep, err
	}
	offered, err := api.HookEventKeys(ctx)
	if err != nil {
		return rep, fmt.Errorf("list Keap's event keys: %w", err)
	}
	existing, err := api.ListHooks(ctx)
	if err != nil {
		return rep, fmt.Errorf("list hooks: %w", err)
	}
	ours := map[string]keap.Hook{}
	for _, h := range existing {
		switch {
		case h.HookURL == url:
			ours[h.EventKey] = h
		case strings.Contains(h.HookURL, "/hooks/") && strings.HasPrefix(h.HookURL, strings.TrimRight(publicURL, "/")):
			// Ours, at an old URL (the endpoint token changed): remove it.
			if err := api.DeleteHook(ctx, h.Key); err != nil {
				return rep, fmt.Errorf("delete stale hook %s: %w", h.Key, err)
			}
			rep.Removed++
		}
	}
	var keys []string
	for _, ev := range EventKeys {
		if !slices.Contains(offered, ev) {
			continue // this Keap app does not offer it
		}
		h, ok := ours[ev]
		switch {
		case !ok:
			created, err := api.CreateHook(ctx, ev, url)
			if err != nil {
				return rep, fmt.Errorf("subscribe to %s: %w", ev, err)
			}
			h = *created
			rep.Created++
		case h.Status != "Verified":
			verified, err := api.VerifyHook(ctx, h.Key)
			if err != nil {
				return rep, fmt.Errorf("re-verify %s: %w", ev, err)
			}
			h = *verified
			rep.Reverified++
		}
		if h.Status == "Verified" {
			rep.Verified++
		} else {
			rep.Unverified = append(rep.Unverified, ev)
		}
		keys = append(keys, h.Key)
		if _, err := db.Exec(ctx, sqlUpsertHook, account, h.Key, h.EventKey, h.HookURL, h.Status); err != nil {
			return rep, fmt.Errorf("record hook %s: %w", ev, err)
		}
	}
	if _, err := db.Exec(ctx, sqlForgetHooks, account, keys); err != nil {
		return rep, fmt.Errorf("forget removed hooks: %w", err)
	}
	return rep, nil
}
