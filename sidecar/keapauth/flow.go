package keapauth

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// NewState returns an unguessable OAuth state value. crypto/rand.Read cannot fail (since Go
// 1.24 it crashes the program instead of returning an error), so neither can this.
func NewState() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// LoginOptions shape `keapsync auth login`.
type LoginOptions struct {
	Listen string    // where the callback listens (default 127.0.0.1:0, any free port)
	Out    io.Writer // where the authorize URL is printed
	// Follow fetches the authorize URL itself, for an authorization server that approves without
	// a person (the sandbox in auto-approve mode). Otherwise a person opens the printed URL.
	Follow  bool
	Timeout time.Duration // how long to wait for the callback (default 10 minutes)
	OnURL   func(string)  // called with the authorize URL, e.g. to open a browser
	// RedirectURI, when set, is the redirect URI registered in Keap's developer portal, which
	// Keap requires to be HTTPS: login cannot listen there, so instead of a callback server it
	// reads the address the browser was sent to (or just its code) from Paste.
	RedirectURI string
	Paste       io.Reader // where the pasted redirect comes from (the terminal's stdin)
}

// Login runs the authorization code flow with a one-shot callback server on the loopback
// interface, checks the returned state, and connects the account. Returns account id and tenant.
func (k *Keeper) Login(ctx context.Context, o LoginOptions) (account, tenant string, err error) {
	if o.Listen == "" {
		o.Listen = "127.0.0.1:0"
	}
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Minute
	}
	if o.RedirectURI != "" {
		return k.loginByPaste(ctx, o)
	}
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return "", "", fmt.Errorf("listen for the OAuth callback on %s: %w", o.Listen, err)
	}
	defer ln.Close()
	redirect := "http://" + ln.Addr().String() + "/callback"
	state := NewState()
	type result struct {
		account, tenant string
		err             error
	}
	done := make(chan result, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("/callback", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(state)) != 1 {
			// A stray or forged request: refuse it and keep waiting for the real one.
			http.Error(w, "state does not match this login", http.StatusBadRequest)
			return
		}
		var res result
		if e := q.Get("error"); e != "" {
			res.err = fmt.Errorf("Keap authorization %s: %s", e, q.Get("error_description"))
		} else {
			res.account, res.tenant, res.err = k.Connect(r.Context(), q.Get("code"), redirect)
		}
		writeOutcome(w, res.tenant, res.err)
		select {
		case done <- res:
		default:
		}
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	// The handler hands over the result before it returns, so its page may still be unsent:
	// Shutdown lets it finish (Close cut it off, and the person's browser showed a reset
	// connection instead of what happened), bounded for a browser that stops reading.
	defer func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if srv.Shutdown(ctx) != nil {
			srv.Close()
		}
	}()

	authURL := k.AuthCodeURL(state, redirect)
	if o.Out != nil {
		fmt.Fprintf(o.Out, "Open this URL to connect keapsync to Keap:\n\n  %s\n\nWaiting for Keap to redirect to %s ...\n", authURL, redirect)
	}
	if o.OnURL != nil {
		o.OnURL(authURL)
	}
	if o.Follow {
		go func() {
			resp, err := k.cfg.HTTPClient.Get(authURL)
			if err != nil {
				select {
				case done <- result{err: fmt.Errorf("follow the authorize URL: %w", err)}:
				default:
				}
				return
			}
			resp.Body.Close()
		}()
	}
	timer := time.NewTimer(o.Timeout)
	defer timer.Stop()
	select {
	case res := <-done:
		return res.account, res.tenant, res.err
	case <-timer.C:
		return "", "", fmt.Errorf("no OAuth callback within %s", o.Timeout)
	case <-ctx.Done():
		return "", "", ctx.Err()
	}
}

func writeOutcome(w http.ResponseWriter, tenant string, err error) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, "<h1>keapsync is not connected</h1><p>%s</p>", html.EscapeString(err.Error()))
		return
	}
	fmt.Fprintf(w, "<h1>keapsync is connected to %s</h1><p>You can close this window.</p>", html.EscapeString(tenant))
}

// DefaultLinkTTL is how long a connect link printed by `keapsync auth link` stays usable.
const DefaultLinkTTL = 15 * time.Minute

// NewConnectLink returns a one-time URL that starts the connect flow at publicURL (the server of
// ConnectHandler), usable once within ttl (DefaultLinkTTL if 0). Only the SHA-256 of its token is
// stored: whoever holds the URL may connect one Keap account, so hand it only to an admin.
func NewConnectLink(ctx context.Context, db interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}, publicURL string, ttl time.Duration) (string, time.Time, error) {
	if ttl == 0 {
		ttl = DefaultLinkTTL
	}
	token := NewState()
	sum := sha256.Sum256([]byte(token))
	var expires time.Time
	if err := db.QueryRow(ctx, sqlNewLink, sum[:], ttl).Scan(&expires); err != nil {
		return "", time.Time{}, fmt.Errorf("store connect link: %w", err)
	}
	return publicURL + "/oauth/start?" + url.Values{"link": {token}}.Encode(), expires, nil
}

// wellFormed: a state or link token as NewState makes them (43 base64url characters). Anything
// else is refused before it reaches the database, which would reject a NUL or invalid UTF-8
// with an error that looks like an outage.
func wellFormed(s string) bool {
	if len(s) != 43 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// ConnectHandler serves the connect flow for server deployments. GET /oauth/start?link=<token>
// takes a one-time link from NewConnectLink (`keapsync auth link`): without a valid one it
// refuses and stores nothing, so an anonymous visitor cannot connect a tenant or grow the state
// table. With one, it redirects to Keap with a state stored in Postgres (so any sidecar process
// can serve the callback, and a state is accepted once); GET /oauth/callback checks the state and
// connects the account. publicURL is how Keap reaches this server (KEAPSYNC_PUBLIC_URL).
func (k *Keeper) ConnectHandler(publicURL string) http.Handler {
	redirect := publicURL + "/oauth/callback"
	mux := http.NewServeMux()
	mux.HandleFunc("GET /oauth/start", func(w http.ResponseWriter, r *http.Request) {
		link := r.URL.Query().Get("link")
		if !wellFormed(link) {
			k.log.Info("refused OAuth start without a connect link", "remote", r.RemoteAddr)
			writeRefusal(w, http.StatusUnauthorized, "Connecting a Keap account needs a one-time link: run keapsync auth link.")
			return
		}
		state := NewState()
		sum := sha256.Sum256([]byte(link))
		var started bool
		if err := k.db.QueryRow(r.Context(), sqlStartOAuth, sum[:], state, redirect).Scan(&started); err != nil {
			k.log.Error("start OAuth flow", "err", err)
			http.Error(w, "could not start the Keap connection", http.StatusInternalServerError)
			return
		}
		if !started {
			k.log.Info("refused OAuth start with an unknown, used or expired connect link", "remote", r.RemoteAddr)
			writeRefusal(w, http.StatusForbidden, "This connect link is unknown, used or expired: run keapsync auth link for a new one.")
			return
		}
		http.Redirect(w, r, k.AuthCodeURL(state, redirect), http.StatusFound)
	})
	mux.HandleFunc("GET /oauth/callback", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		var stored *string
		if wellFormed(q.Get("state")) {
			if err := k.db.QueryRow(r.Context(), sqlTakeState, q.Get("state")).Scan(&stored); err != nil {
				k.log.Error("check OAuth state", "err", err)
				http.Error(w, "could not check the Keap connection", http.StatusInternalServerError)
				return
			}
		}
		if stored == nil {
			k.log.Info("refused OAuth callback with an unknown or expired state", "remote", r.RemoteAddr)
			writeOutcome(w, "", errors.New("unknown or expired state: ask an admin for a new connect link (keapsync auth link)"))
			return
		}
		if e := q.Get("error"); e != "" {
			writeOutcome(w, "", fmt.Errorf("Keap authorization %s: %s", e, q.Get("error_description")))
			return
		}
		_, tenant, err := k.Connect(r.Context(), q.Get("code"), *stored)
		if err != nil {
			k.log.Warn("OAuth callback did not connect an account", "err", err)
		}
		writeOutcome(w, tenant, err)
	})
	return mux
}

func writeRefusal(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	fmt.Fprintf(w, "<h1>keapsync: not allowed</h1><p>%s</p>", html.EscapeString(msg))
}

// loginByPaste is Login for a redirect URI keapsync cannot listen on: the person approves in the
// browser, Keap sends the browser to RedirectURI with ?code=…&state=…, and the person pastes that
// address (or the code alone) back. The page at RedirectURI need not load: the code is in the
// address bar. A pasted address must carry this login's state; a bare code is the person's own act.
func (k *Keeper) loginByPaste(ctx context.Context, o LoginOptions) (account, tenant string, err error) {
	if o.Paste == nil {
		return "", "", errors.New("login with a redirect URI needs the redirected address pasted on stdin")
	}
	state := NewState()
	authURL := k.AuthCodeURL(state, o.RedirectURI)
	if o.Out != nil {
		fmt.Fprintf(o.Out, "Open this URL to connect keapsync to Keap:\n\n  %s\n\n"+
			"After you approve, Keap sends your browser to %s (the page may not load).\n"+
			"Paste the whole address from the browser's address bar (or just the code) here and press Enter:\n", authURL, o.RedirectURI)
	}
	if o.OnURL != nil {
		o.OnURL(authURL)
	}
	type line struct {
		s   string
		err error
	}
	got := make(chan line, 1)
	go func() {
		s, err := bufio.NewReader(o.Paste).ReadString('\n')
		if err == io.EOF && strings.TrimSpace(s) != "" {
			err = nil
		}
		got <- line{s, err}
	}()
	timer := time.NewTimer(o.Timeout)
	defer timer.Stop()
	var pasted line
	select {
	case pasted = <-got:
	case <-timer.C:
		return "", "", fmt.Errorf("nothing pasted within %s", o.Timeout)
	case <-ctx.Done():
		return "", "", ctx.Err()
	}
	if pasted.err != nil {
		return "", "", fmt.Errorf("read the pasted redirect: %w", pasted.err)
	}
	code, err := pastedCode(strings.TrimSpace(pasted.s), state)
	if err != nil {
		return "", "", err
	}
	return k.Connect(ctx, code, o.RedirectURI)
}

// pastedCode reads the authorization code from a pasted redirect address or a bare code.
func pastedCode(pasted, state string) (string, error) {
	if pasted == "" {
		return "", errors.New("nothing was pasted")
	}
	if !strings.Contains(pasted, "?") && !strings.Contains(pasted, "=") {
		return pasted, nil // the code alone
	}
	raw := pasted
	if i := strings.Index(raw, "?"); i >= 0 {
		raw = raw[i+1:]
	}
	q, err := url.ParseQuery(strings.SplitN(raw, "#", 2)[0])
	if err != nil {
		return "", fmt.Errorf("read the pasted address: %w", err)
	}
	if e := q.Get("error"); e != "" {
		return "", fmt.Errorf("Keap authorization %s: %s", e, q.Get("error_description"))
	}
	if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(state)) != 1 {
		return "", errors.New("the pasted address is from another login (its state does not match): start again")
	}
	if q.Get("code") == "" {
		return "", errors.New("the pasted address has no code")
	}
	return q.Get("code"), nil
}
