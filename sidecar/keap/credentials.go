package keap

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
)

// Credentials authorize a request to Keap. The OAuth token keeper implements it (and Refresher);
// APIKey covers personal access and service account keys.
type Credentials interface {
	Authorize(ctx context.Context, req *http.Request) error
}

// Refresher is implemented by credentials that can renew themselves. The client calls Refresh
// once when Keap answers 401 saying the access token is invalid or expired, then retries the
// request once: a token revoked or rotated elsewhere recovers without the caller noticing, and
// a refresh that fails surfaces as the call's error.
type Refresher interface {
	Refresh(ctx context.Context) error
}

type apiKey string

// APIKey returns credentials for a personal access token or service account key, sent as
// X-Keap-API-Key (FACTS.md §1).
func APIKey(key string) Credentials { return apiKey(key) }

func (k apiKey) Authorize(_ context.Context, req *http.Request) error {
	req.Header.Set("X-Keap-API-Key", string(k))
	return nil
}

// String keeps the key out of logs and %v.
func (k apiKey) String() string { return "keap.APIKey(****)" }

type bearer string

// BearerToken returns credentials that send a fixed OAuth access token. It cannot refresh; use
// the token keeper in production.
func BearerToken(token string) Credentials { return bearer(token) }

func (b bearer) Authorize(_ context.Context, req *http.Request) error {
	req.Header.Set("Authorization", "Bearer "+string(b))
	return nil
}

func (b bearer) String() string { return "keap.BearerToken(****)" }

// Budget keys name a shared budget in keapsync.rate_budget_members and in metrics. Keap bills
// OAuth calls per client id and personal keys per key (FACTS.md §2); both are hashed, so neither
// the key (a secret) nor the client id (half of the app's credentials, and /metrics is scraped
// by whoever can reach it) reaches the database or a metric label.
func OAuthBudgetKey(clientID string) string { return "oauth:" + shortHash(clientID) }

// KeyBudgetKey is the budget key of a personal access or service account key.
func KeyBudgetKey(key string) string { return "key:" + shortHash(key) }

func shortHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:8])
}

// TenantBudgetKey is the budget key of a Keap application instance (e.g. ab123.infusionsoft.com).
func TenantBudgetKey(tenant string) string { return "tenant:" + tenant }
