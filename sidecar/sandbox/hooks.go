package sandbox

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"
)

// Hook statuses, as [V1] RestHook.status.
const (
	StatusUnverified = "Unverified"
	StatusVerified   = "Verified"
	StatusInactive   = "Inactive"
)

// EventKeys are the event keys the sandbox offers (FACTS.md §6, from SDK enums). Subscribing to
// any of them works; the sandbox emits the contact, contactGroup, order, invoice.payment.add
// (a payment, naming the invoice = order id), subscription, company, product, note, task and
// opportunity ones (opportunity.stage_move when an opportunity changes stage).
var EventKeys = []string{
	"appointment.add", "appointment.delete", "appointment.edit",
	"company.add", "company.delete", "company.edit",
	"contact.add", "contact.delete", "contact.edit", "contact.redact",
	"contactGroup.add", "contactGroup.applied", "contactGroup.delete", "contactGroup.edit", "contactGroup.removed",
	"invoice.add", "invoice.delete", "invoice.edit",
	"invoice.payment.add", "invoice.payment.delete", "invoice.payment.edit",
	"leadsource.add", "leadsource.delete", "leadsource.edit",
	"note.add", "note.delete", "note.edit",
	"opportunity.add", "opportunity.delete", "opportunity.edit", "opportunity.stage_move",
	"order.add", "order.delete", "order.edit",
	"product.add", "product.delete", "product.edit",
	"subscription.add", "subscription.delete", "subscription.edit",
	"task.add", "task.delete", "task.edit",
	"user.activate", "user.add", "user.edit",
}

// Hook is a REST Hook subscription as [V1] serves it.
type Hook struct {
	Key      string `json:"key"`
	EventKey string `json:"eventKey"`
	HookURL  string `json:"hookUrl"`
	Status   string `json:"status"`
	secret   string // the last handshake secret, for delayedVerify
}

// hookService owns hook subscriptions and their deliveries.
type hookService struct {
	mu          sync.Mutex
	hooks       map[string]*Hook
	seq         int
	clock       Clock
	log         *slog.Logger
	client      *http.Client
	timeout     time.Duration
	allowRemote bool
	queue       *deliveryQueue
}

func validEventKey(k string) bool {
	for _, e := range EventKeys {
		if e == k {
			return true
		}
	}
	return false
}

func (h *hookService) checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return badRequest("Invalid hookUrl: " + raw)
	}
	if !h.allowRemote && !isLoopbackHost(u.Hostname()) {
		return badRequest("hookUrl must be a loopback address in the sandbox (see AllowRemoteHooks): " + raw)
	}
	return nil
}

func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// create registers a hook and runs the handshake during the call, so the returned status
// tells whether the receiver echoed X-Hook-Secret ([V1] create_a_hook_subscription).
func (h *hookService) create(ctx context.Context, eventKey, hookURL string) (Hook, error) {
	if !validEventKey(eventKey) {
		return Hook{}, badRequest("Invalid eventKey: " + eventKey)
	}
	if err := h.checkURL(hookURL); err != nil {
		return Hook{}, err
	}
	h.mu.Lock()
	h.seq++
	hk := &Hook{Key: strconv.Itoa(h.seq), EventKey: eventKey, HookURL: hookURL, Status: StatusUnverified}
	h.hooks[hk.Key] = hk
	h.mu.Unlock()
	return h.verify(ctx, hk.Key)
}

func (h *hookService) get(key string) (Hook, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	hk, ok := h.hooks[key]
	if !ok {
		return Hook{}, notFound("Hook subscription not found: " + key)
	}
	return *hk, nil
}

func (h *hookService) list() []Hook {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]Hook, 0, len(h.hooks))
	for i := 1; i <= h.seq; i++ {
		if hk, ok := h.hooks[strconv.Itoa(i)]; ok {
			out = append(out, *hk)
		}
	}
	return out
}

// update changes event key and URL and re-runs the handshake, since the receiver may differ.
func (h *hookService) update(ctx context.Context, key, eventKey, hookURL string) (Hook, error) {
	if !validEventKey(eventKey) {
		return Hook{}, badRequest("Invalid eventKey: " + eventKey)
	}
	if err := h.checkURL(hookURL); err != nil {
		return Hook{}, err
	}
	h.mu.Lock()
	hk, ok := h.hooks[key]
	if ok {
		hk.EventKey, hk.HookURL, hk.Status = eventKey, hookURL, StatusUnverified
	}
	h.mu.Unlock()
	if !ok {
		return Hook{}, notFound("Hook subscription not found: " + key)
	}
	h.queue.drop(key)
	return h.verify(ctx, key)
}

func (h *hookService) delete(key string) error {
	h.mu.Lock()
	_, ok := h.hooks[key]
	delete(h.hooks, key)
	h.mu.Unlock()
	if !ok {
		return notFound("Hook subscription not found: " + key)
	}
	h.queue.drop(key)
	return nil
}

// verify runs the immediate-confirmation handshake: POST with X-Hook-Secret; the receiver must
// answer 200 and echo the header. Success (re)activates the hook, failure leaves it Unverified.
func (h *hookService) verify(ctx context.Context, key string) (Hook, error) {
	h.mu.Lock()
	hk, ok := h.hooks[key]
	if !ok {
		h.mu.Unlock()
		return Hook{}, notFound("Hook subscription not found: " + key)
	}
	secret := newSecret()
	hk.secret = secret
	target := hk.HookURL
	h.mu.Unlock()

	ok = h.handshake(ctx, target, secret)
	h.mu.Lock()
	defer h.mu.Unlock()
	if hk, found := h.hooks[key]; found && hk.secret == secret {
		hk.Status = StatusUnverified
		if ok {
			hk.Status = StatusVerified
		}
		return *hk, nil
	}
	return Hook{}, notFound("Hook subscription not found: " + key)
}

func (h *hookService) handshake(ctx context.Context, target, secret string) bool {
	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, http.NoBody)
	if err != nil {
		return false
	}
	req.Header.Set("X-Hook-Secret", secret)
	req.Header.Set("Content-Type", "application/json")
	resp, err := h.client.Do(req)
	if err != nil {
		h.log.Info("hook handshake failed", "url", target, "err", err)
		return false
	}
	defer resp.Body.Close()
	echoed := resp.Header.Get("X-Hook-Secret") == secret
	ok := resp.StatusCode == http.StatusOK && echoed
	// One line per hook would bury the demo's instructions under dozens of lines (33 hooks);
	// only a refused handshake is news.
	level := slog.LevelDebug
	if !ok {
		level = slog.LevelWarn
	}
	h.log.Log(ctx, level, "hook handshake", "url", target, "status", resp.StatusCode, "echoed", echoed)
	return ok
}

// delayedVerify is the out-of-band confirmation: the client sends back the secret it received.
func (h *hookService) delayedVerify(key, secret string) (Hook, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	hk, ok := h.hooks[key]
	if !ok {
		return Hook{}, notFound("Hook subscription not found: " + key)
	}
	if secret == "" || hk.secret == "" || secret != hk.secret {
		return Hook{}, badRequest("X-Hook-Secret does not match")
	}
	hk.Status = StatusVerified
	return *hk, nil
}

// deactivate marks a hook Inactive after its last failed attempt or a 410.
func (h *hookService) deactivate(key string) {
	h.mu.Lock()
	if hk, ok := h.hooks[key]; ok {
		hk.Status = StatusInactive
	}
	h.mu.Unlock()
	h.queue.drop(key)
}

// subscribers returns the verified hooks for an event key.
func (h *hookService) subscribers(eventKey string) []Hook {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []Hook
	for _, hk := range h.hooks {
		if hk.EventKey == eventKey && hk.Status == StatusVerified {
			out = append(out, *hk)
		}
	}
	return out
}

func newSecret() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err)) // cannot happen on supported platforms
	}
	return hex.EncodeToString(b)
}
