package ingest

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// DefaultMaxBody bounds a delivery: 1000 object keys with apiUrl and timestamp fit in ~200 KiB.
const DefaultMaxBody = 1 << 20

// Receiver answers Keap's REST Hook requests at /hooks/{token}. A delivery is acknowledged only
// after its inbox row commits (law 5); nothing from a request that fails a check is stored.
type Receiver struct {
	DB         execer
	MaxBody    int64  // default DefaultMaxBody
	SigningKey []byte // if set, require X-Hook-Signature: hex HMAC-SHA256 of the body (for a signing relay)
	Log        *slog.Logger
}

// execer is a pool or a transaction: what the receiver, and the store of an agreement, use.
type execer interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

const (
	sqlEndpointAccount = `select account_id from keapsync.hook_endpoints where path_token = $1`
	// One statement: the inbox row and the subscription's last-delivery time commit together.
	sqlInboxInsert = `
with stored as (
  insert into keapsync.webhook_inbox (account_id, event_key, object_type, object_ids, payload, body_sha256)
  values ($1, $2, $3, $4, $5, $6)
  on conflict (account_id, body_sha256) where processed_at is null do nothing
  returning id)
update keapsync.hook_subscriptions set last_delivery_at = now()
 where account_id = $1 and event_key = $2`
)

func (rv *Receiver) log() *slog.Logger {
	if rv.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return rv.Log
}

// ServeHTTP implements http.Handler; mount it at "/hooks/".
func (rv *Receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	token := strings.TrimPrefix(r.URL.Path, "/hooks/")
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		refuse(w, http.StatusMethodNotAllowed, "POST only")
		return
	}
	if !wellFormedToken(token) {
		// A NUL or invalid UTF-8 would make Postgres fail the lookup, which is not an outage.
		rv.log().Debug("hook delivery to a malformed URL", "remote", r.RemoteAddr)
		refuse(w, http.StatusNotFound, "404 page not found")
		return
	}
	var account string
	if err := rv.DB.QueryRow(r.Context(), sqlEndpointAccount, token).Scan(&account); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			// A URL keapsync retired (or never gave out): 410 makes Keap deactivate the
			// subscription at once, where any other 4xx is retried four times (FACTS.md §6).
			rv.log().Debug("hook delivery to an unknown URL", "remote", r.RemoteAddr)
			refuse(w, http.StatusGone, "this hook URL is retired")
			return
		}
		rv.unavailable(w, "look up hook endpoint", err)
		return
	}
	if secret := r.Header.Get("X-Hook-Secret"); secret != "" {
		// Keap's verification handshake: echo the secret to confirm the subscription.
		w.Header().Set("X-Hook-Secret", secret)
		w.WriteHeader(http.StatusOK)
		return
	}
	maxBody := rv.MaxBody
	if maxBody == 0 {
		maxBody = DefaultMaxBody
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, "delivery too large", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "could not read delivery", http.StatusBadRequest)
		return
	}
	if len(rv.SigningKey) > 0 && !rv.signed(r, body) {
		http.Error(w, "missing or wrong X-Hook-Signature", http.StatusUnauthorized)
		return
	}
	d, err := DecodeDelivery(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if d.Empty() {
		// Valid but nothing keapsync syncs: accept, so Keap never deactivates the hook for our reasons.
		rv.log().Debug("ignored hook delivery", "account", account, "event", d.EventKey)
		w.WriteHeader(http.StatusOK)
		return
	}
	sum := sha256.Sum256(body)
	payload := map[string]any{"event_key": d.EventKey, "ids": d.IDs}
	if len(d.TagIDs) > 0 {
		payload["tag_ids"] = d.TagIDs
	}
	if len(d.EitherIDs) > 0 {
		payload["either_ids"] = d.EitherIDs
	}
	if _, err := rv.DB.Exec(r.Context(), sqlInboxInsert, account, d.EventKey, d.ObjectType, d.IDs, payload, sum[:]); err != nil {
		rv.unavailable(w, "store hook delivery", err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// wellFormedToken: hook URL tokens are URL-safe ASCII (the database makes 64 hex digits).
func wellFormedToken(token string) bool {
	if token == "" || len(token) > 128 {
		return false
	}
	for i := 0; i < len(token); i++ {
		c := token[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// refuse answers a request whose body will not be read. Connection: close lets the answer
// leave at once: otherwise net/http first drains the unread body, which a slow client can make
// last as long as it likes.
func refuse(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Connection", "close")
	http.Error(w, msg, status)
}

// unavailable answers 503 so Keap retries: the delivery was not stored, and must not be lost.
func (rv *Receiver) unavailable(w http.ResponseWriter, doing string, err error) {
	rv.log().Error("hook delivery not stored; Keap will retry", "doing", doing, "err", err)
	http.Error(w, "temporarily unavailable", http.StatusServiceUnavailable)
}

func (rv *Receiver) signed(r *http.Request, body []byte) bool {
	got, err := hex.DecodeString(strings.TrimPrefix(r.Header.Get("X-Hook-Signature"), "sha256="))
	if err != nil || len(got) == 0 {
		return false
	}
	mac := hmac.New(sha256.New, rv.SigningKey)
	mac.Write(body)
	return hmac.Equal(got, mac.Sum(nil))
}
