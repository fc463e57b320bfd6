package keap

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
)

// Hook statuses.
const (
	HookUnverified = "Unverified"
	HookVerified   = "Verified"
	HookInactive   = "Inactive"
)

// Hook is a REST Hook subscription (v1 only): one event key, one URL.
type Hook struct {
	Key      string          `json:"key"`
	EventKey string          `json:"eventKey"`
	HookURL  string          `json:"hookUrl"`
	Status   string          `json:"status"`
	Raw      json.RawMessage `json:"-"`
}

// UnmarshalJSON accepts a numeric key and keeps the raw JSON.
func (h *Hook) UnmarshalJSON(b []byte) error {
	var p struct {
		Key      json.RawMessage `json:"key"`
		EventKey string          `json:"eventKey"`
		HookURL  string          `json:"hookUrl"`
		Status   string          `json:"status"`
	}
	raw, err := withRaw(b, &p)
	if err != nil {
		return fmt.Errorf("hook: %w", err)
	}
	*h = Hook{Key: looseString(p.Key), EventKey: p.EventKey, HookURL: p.HookURL, Status: p.Status, Raw: raw}
	return nil
}

type hookBody struct {
	EventKey string `json:"eventKey"`
	HookURL  string `json:"hookUrl"`
}

func hookPath(key string) string { return "/v1/hooks/" + url.PathEscape(key) }

// HookEventKeys lists the event keys Keap offers.
func (c *Client) HookEventKeys(ctx context.Context) ([]string, error) {
	var out []string
	if err := c.do(ctx, c.get("/v1/hooks/event_keys", "/v1/hooks/event_keys", nil), &out); err != nil {
		return nil, err
	}
	return out, nil
}

// ListHooks lists the hook subscriptions.
func (c *Client) ListHooks(ctx context.Context) ([]Hook, error) {
	var out []Hook
	if err := c.do(ctx, c.get("/v1/hooks", "/v1/hooks", nil), &out); err != nil {
		return nil, err
	}
	return out, nil
}

// CreateHook subscribes hookURL to one event key. Keap verifies the URL during the call (the
// receiver must echo X-Hook-Secret), so the returned status says whether that worked. Not
// retried on network errors: a second subscription would double every delivery.
func (c *Client) CreateHook(ctx context.Context, eventKey, hookURL string) (*Hook, error) {
	var out Hook
	r := request{method: http.MethodPost, endpoint: "/v1/hooks", path: "/v1/hooks", body: hookBody{eventKey, hookURL}}
	if err := c.do(ctx, r, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// GetHook fetches one hook subscription.
func (c *Client) GetHook(ctx context.Context, key string) (*Hook, error) {
	var out Hook
	if err := c.do(ctx, c.get("/v1/hooks/{key}", hookPath(key), nil), &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// UpdateHook changes a subscription's event key and URL.
func (c *Client) UpdateHook(ctx context.Context, key, eventKey, hookURL string) (*Hook, error) {
	var out Hook
	r := request{method: http.MethodPut, endpoint: "/v1/hooks/{key}", path: hookPath(key), body: hookBody{eventKey, hookURL}, idempotent: true}
	if err := c.do(ctx, r, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteHook removes a subscription.
func (c *Client) DeleteHook(ctx context.Context, key string) error {
	return c.do(ctx, request{method: http.MethodDelete, endpoint: "/v1/hooks/{key}", path: hookPath(key), idempotent: true}, nil)
}

// VerifyHook re-runs the handshake (and reactivates an Inactive hook). Repeatable, so retried.
func (c *Client) VerifyHook(ctx context.Context, key string) (*Hook, error) {
	var out Hook
	r := request{method: http.MethodPost, endpoint: "/v1/hooks/{key}/verify", path: hookPath(key) + "/verify", idempotent: true}
	if err := c.do(ctx, r, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DelayedVerifyHook confirms a subscription out of band with the secret Keap sent in its
// handshake. Repeatable, so retried.
func (c *Client) DelayedVerifyHook(ctx context.Context, key, secret string) (*Hook, error) {
	var out Hook
	r := request{method: http.MethodPost, endpoint: "/v1/hooks/{key}/delayedVerify", path: hookPath(key) + "/delayedVerify",
		header: http.Header{"X-Hook-Secret": {secret}}, idempotent: true}
	if err := c.do(ctx, r, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
