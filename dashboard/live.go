package dashboard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keapsync/keapsync/sidecar/httpguard"
)

// liveConfig tells the page script where signals come from.
type liveConfig struct {
	Mode        string // "realtime" or "sse"
	Account     string
	RealtimeURL string // wss://<ref>.supabase.co/realtime/v1/websocket
	AnonKey     string // public by design (the publishable key); Realtime wants it as apikey
}

func (s *Server) liveConfig(a *account) liveConfig {
	lc := liveConfig{Mode: "sse"}
	if a != nil {
		lc.Account = a.ID
	}
	if s.cfg.SupabaseURL != "" {
		lc.Mode = "realtime"
		lc.RealtimeURL = realtimeURL(s.cfg.SupabaseURL)
		lc.AnonKey = s.cfg.AnonKey
	}
	return lc
}

// realtimeURL is the project's Realtime websocket: https → wss, http (local CLI) → ws.
func realtimeURL(supabaseURL string) string {
	u, err := url.Parse(supabaseURL)
	if err != nil {
		return ""
	}
	scheme := "wss"
	if u.Scheme == "http" {
		scheme = "ws"
	}
	return scheme + "://" + u.Host + "/realtime/v1/websocket"
}

// liveToken hands the browser's Realtime client the user's access token (it must send it to join
// the private channel; the cookie is HttpOnly). Same-origin only, never cached.
func (s *Server) liveToken(w http.ResponseWriter, r *http.Request, u *user) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	return json.NewEncoder(w).Encode(map[string]any{
		"access_token": u.AccessToken, "expires_at": u.Expires.Unix(),
	})
}

// signal is what keapsync.signal() sends; only ids and states, never data.
type signal struct {
	Account string `json:"account_id"`
	Kind    string `json:"kind"`
	raw     []byte
}

// hub fans LISTEN keapsync notifications out to event streams, each filtered to the accounts
// its person is a member of (asked of the database under RLS when the stream opens).
type hub struct {
	db  *pgxpool.Pool
	log *slog.Logger

	mu     sync.Mutex
	subs   map[*subscriber]struct{}
	closed chan struct{}
	once   sync.Once
}

type subscriber struct {
	accounts map[string]bool
	ch       chan []byte
}

func newHub(db *pgxpool.Pool, log *slog.Logger) *hub {
	return &hub{db: db, log: log, subs: map[*subscriber]struct{}{}, closed: make(chan struct{})}
}

func (h *hub) closeAll() { h.once.Do(func() { close(h.closed) }) }

// run listens until ctx ends, reconnecting with backoff: a lost connection must not take the
// dashboard down, only pause live updates (streams get a "resync" so pages refetch once).
func (h *hub) run(ctx context.Context) error {
	backoff := time.Second
	for {
		err := h.listen(ctx)
		if ctx.Err() != nil {
			return nil
		}
		h.log.Warn("LISTEN keapsync lost; retrying", "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

func (h *hub) listen(ctx context.Context) error {
	conn, err := h.db.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquire: %w", err)
	}
	// The connection ends up in LISTEN state: never hand it back to the pool.
	pc := conn.Hijack()
	defer pc.Close(context.Background())
	if _, err := pc.Exec(ctx, "listen keapsync"); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	h.publish(signal{Kind: "resync", raw: []byte(`{"kind":"resync"}`)}, true)
	for {
		n, err := pc.WaitForNotification(ctx)
		if err != nil {
			return fmt.Errorf("wait: %w", err)
		}
		var sig signal
		if err := json.Unmarshal([]byte(n.Payload), &sig); err != nil {
			h.log.Warn("unreadable signal", "err", err)
			continue
		}
		sig.raw = []byte(n.Payload)
		h.publish(sig, false)
	}
}

func (h *hub) publish(sig signal, all bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for sub := range h.subs {
		if !all && !sub.accounts[sig.Account] {
			continue
		}
		select {
		case sub.ch <- sig.raw:
		default: // a stalled browser misses a signal; its next one refetches the fragment anyway
		}
	}
}

func (h *hub) add(sub *subscriber) func() {
	h.mu.Lock()
	h.subs[sub] = struct{}{}
	h.mu.Unlock()
	return func() {
		h.mu.Lock()
		delete(h.subs, sub)
		h.mu.Unlock()
	}
}

// events is the Server-Sent Events stream. It ends when the access token expires: the browser's
// EventSource reconnects, and that request refreshes the session like any other.
func (s *Server) events(w http.ResponseWriter, r *http.Request, u *user) error {
	fl, ok := w.(http.Flusher)
	if !ok {
		return errors.New("streaming unsupported")
	}
	sub := &subscriber{accounts: map[string]bool{}, ch: make(chan []byte, 64)}
	err := s.asUser(r.Context(), u, 5*time.Second, func(tx pgx.Tx) error {
		rows, err := tx.Query(r.Context(), "select id::text from keapsync.accounts")
		if err != nil {
			return err
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
		for _, id := range ids {
			sub.accounts[id] = true
		}
		return err
	})
	if err != nil {
		return err
	}
	defer s.hub.add(sub)()
	// The stream lives until the token expires, past the server's read and write timeouts.
	if err := httpguard.Stream(w, time.Until(u.Expires)+time.Minute); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, "retry: 2000\n: connected\n\n")
	fl.Flush()
	expire := time.NewTimer(max(time.Until(u.Expires), time.Second))
	defer expire.Stop()
	keep := time.NewTicker(25 * time.Second) // proxies cut idle streams
	defer keep.Stop()
	for {
		select {
		case <-r.Context().Done():
			return nil
		case <-s.hub.closed:
			return nil
		case <-expire.C:
			return nil
		case <-keep.C:
			fmt.Fprint(w, ": keepalive\n\n")
		case msg := <-sub.ch:
			fmt.Fprintf(w, "event: signal\ndata: %s\n\n", msg)
		}
		fl.Flush()
	}
}
