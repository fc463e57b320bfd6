package ingest

import (
	"context"
	"errors"
	"fmt"
	neturl "net/url"
	"slices"
	"strings"

	"github.com/keapsync/keapsync/sidecar/keap"
	"github.com/keapsync/keapsync/sidecar/objecttype"
)

// EventKeys are the Keap events keapsync subscribes to (one subscription each): the registry's.
var EventKeys = objecttype.EventKeys()

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

// sqlHooksLock serialises EnsureHooks per account across processes: two runs at once (serve's
// hourly round starting while `hooks ensure` or the demo runs) would each see no subscription
// and each create one, leaving every event delivered twice.
const sqlHooksLock = `select pg_advisory_xact_lock(hashtextextended('keapsync.hooks/' || $1::text, 0))`

// EnsureHooks makes Keap hold exactly one subscription per event key keapsync needs at the
// account's hook URL, and keapsync.hook_subscriptions exactly those. It matches what Keap holds
// by event key and URL (normalised: Keap may store a URL differently from how it was given),
// deletes extra copies and keapsync's subscriptions at stale URLs or for events it no longer
// needs, re-verifies subscriptions that are not Verified (Keap marks them Inactive after failed
// deliveries), and creates only what is missing, so a second run makes no create call. The
// receiver must be reachable at publicURL: Keap verifies during the create call.
func EnsureHooks(ctx context.Context, db DB, api HookAPI, account, publicURL string) (HookReport, error) {
	var rep HookReport
	// Outside the transaction below: Keap's verification request, made during the create call,
	// must find the endpoint committed.
	url, err := HookURL(ctx, db, account, publicURL)
	if err != nil {
		return rep, err
	}
	tx, err := db.Begin(ctx)
	if err != nil {
		return rep, fmt.Errorf("ensure hooks: %w", err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, sqlHooksLock, account); err != nil {
		return rep, fmt.Errorf("ensure hooks: lock account %s: %w", account, err)
	}
	offered, err := api.HookEventKeys(ctx)
	if err != nil {
		return rep, fmt.Errorf("list Keap's event keys: %w", err)
	}
	existing, err := api.ListHooks(ctx)
	if err != nil {
		return rep, fmt.Errorf("list hooks: %w", err)
	}
	// Types the account has turned off need no subscription (keapsync.sync_directions).
	needed, err := eventKeysFor(ctx, tx, account)
	if err != nil {
		return rep, err
	}
	want := map[string]bool{}
	for _, ev := range needed {
		if slices.Contains(offered, ev) {
			want[ev] = true // else this Keap app does not offer it
		}
	}
	ours := map[string]keap.Hook{}
	var extra []keap.Hook
	for _, h := range existing {
		switch {
		case SameHookURL(h.HookURL, url) && want[h.EventKey]:
			kept, seen := ours[h.EventKey]
			switch {
			case !seen:
				ours[h.EventKey] = h
			case h.Status == keap.HookVerified && kept.Status != keap.HookVerified:
				ours[h.EventKey] = h // keep the copy that delivers
				extra = append(extra, kept)
			default:
				extra = append(extra, h)
			}
		case SameHookURL(h.HookURL, url), isOurStaleURL(h.HookURL, publicURL):
			// Ours, for an event keapsync no longer needs, or at an old URL (the endpoint token
			// changed; that URL now answers 410).
			extra = append(extra, h)
		}
	}
	for _, h := range extra {
		if err := api.DeleteHook(ctx, h.Key); err != nil && !errors.Is(err, keap.ErrNotFound) {
			return rep, fmt.Errorf("delete extra hook %s (%s): %w", h.Key, h.EventKey, err)
		}
		rep.Removed++
	}
	var keys []string
	for _, ev := range needed {
		if !want[ev] {
			continue
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
		case h.Status != keap.HookVerified:
			verified, err := api.VerifyHook(ctx, h.Key)
			if err != nil {
				return rep, fmt.Errorf("re-verify %s: %w", ev, err)
			}
			h = *verified
			rep.Reverified++
		}
		if h.Status == keap.HookVerified {
			rep.Verified++
		} else {
			rep.Unverified = append(rep.Unverified, ev)
		}
		keys = append(keys, h.Key)
		if _, err := tx.Exec(ctx, sqlUpsertHook, account, h.Key, h.EventKey, h.HookURL, h.Status); err != nil {
			return rep, fmt.Errorf("record hook %s: %w", ev, err)
		}
	}
	if _, err := tx.Exec(ctx, sqlForgetHooks, account, keys); err != nil {
		return rep, fmt.Errorf("forget removed hooks: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return rep, fmt.Errorf("ensure hooks: record: %w", err)
	}
	return rep, nil
}

// SameHookURL compares hook URLs as Keap might store them: scheme and host in any case, a
// default port written or not, a trailing slash or not.
func SameHookURL(a, b string) bool { return normHookURL(a) == normHookURL(b) }

func normHookURL(s string) string {
	u, err := neturl.Parse(strings.TrimSpace(s))
	if err != nil {
		return strings.TrimSpace(s)
	}
	u.Scheme, u.Host = strings.ToLower(u.Scheme), strings.ToLower(u.Host)
	if (u.Scheme == "https" && u.Port() == "443") || (u.Scheme == "http" && u.Port() == "80") {
		u.Host = u.Hostname()
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.Fragment = ""
	return u.String()
}

// isOurStaleURL reports a hook URL under publicURL's /hooks/ that is not the current one.
func isOurStaleURL(hookURL, publicURL string) bool {
	base := normHookURL(publicURL)
	return strings.HasPrefix(normHookURL(hookURL), base+"/hooks/")
}
