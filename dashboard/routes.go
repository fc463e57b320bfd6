package dashboard

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// handlerFunc is a page or action for a signed-in person; its error goes to s.fail.
type handlerFunc func(w http.ResponseWriter, r *http.Request, u *user) error

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /static/", cacheFor(time.Hour, staticFiles()))
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/static/favicon.svg", http.StatusMovedPermanently)
	})
	mux.HandleFunc("GET /signin", s.signinPage)
	mux.HandleFunc("POST /signin", s.signinPassword)
	mux.HandleFunc("POST /signin/magic", s.signinMagic)
	mux.HandleFunc("POST /signin/local", s.signinLocal)
	mux.HandleFunc("GET /auth/callback", s.authCallback)
	mux.HandleFunc("POST /signout", s.signout)

	mux.Handle("GET /{$}", s.page(s.overview))
	mux.Handle("GET /health", s.page(s.health))
	mux.Handle("GET /conflicts", s.page(s.conflicts))
	mux.Handle("GET /conflicts/{id}", s.page(s.conflict))
	mux.Handle("POST /conflicts/{id}/resolve", s.page(s.resolveConflict))
	mux.Handle("POST /conflicts/bulk", s.page(s.resolveBulk))
	mux.Handle("GET /dead-letters", s.page(s.deadLetters))
	mux.Handle("POST /dead-letters/{id}/{action}", s.page(s.deadLetterAction))
	mux.Handle("GET /dead-letters/{id}/payload", s.page(s.deadLetterPayload))
	mux.Handle("GET /history", s.page(s.history))
	mux.Handle("POST /history/{id}/rollback", s.page(s.rollback))
	for _, t := range dataTables {
		mux.Handle("GET /data/"+t.Name, s.page(s.dataPage(t)))
		mux.Handle("GET /data/"+t.Name+".csv", s.page(s.exportCSV(t)))
	}
	mux.Handle("GET /settings", s.page(s.settings))
	mux.Handle("POST /settings/{what}", s.page(s.saveSettings))
	mux.Handle("GET /live/events", s.page(s.events))
	mux.Handle("GET /live/token", s.page(s.liveToken))
	s.apiRoutes(mux)

	// Go's cross-origin check (Sec-Fetch-Site / Origin) in front of everything, plus the token
	// that page() checks on every POST: either alone stops a forged form.
	return s.headers(http.NewCrossOriginProtection().Handler(mux))
}

// page wraps a handler: a valid session (refreshed if needed) or the sign-in page, and the CSRF
// token on every POST.
func (s *Server) page(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u := s.authenticate(w, r)
		if u == nil {
			s.needSignin(w, r)
			return
		}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
			if err := checkCSRF(r); err != nil {
				s.fail(w, r, &pageError{Status: 403, Code: "csrf", Msg: "This form has expired. Go back, reload the page and try again.", Err: err})
				return
			}
		}
		u.CSRF = s.csrfToken(w, r)
		r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, u))
		if err := h(w, r, u); err != nil {
			s.fail(w, r, err)
		}
	})
}

// needSignin sends a browser to the sign-in page; anything else gets 401.
func (s *Server) needSignin(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && r.URL.Query().Get("fragment") == "" && !strings.HasPrefix(r.URL.Path, "/live/") {
		http.Redirect(w, r, "/signin?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	if r.URL.Query().Get("fragment") != "" || strings.HasPrefix(r.URL.Path, "/live/") {
		http.Error(w, `{"code":"signed_out","message":"Sign in again."}`, http.StatusUnauthorized)
		return
	}
	v := &view{Title: "Sign in", CSRF: s.csrfToken(w, r), Data: s.signinData(r, "Your session ended. Sign in again.")}
	if err := s.render(w, r, http.StatusUnauthorized, "signin", v); err != nil {
		s.fail(w, r, err)
	}
}

// headers sets the security headers of every response. The CSP allows no inline script or style;
// with Supabase Realtime the browser may also open the project's websocket.
func (s *Server) headers(next http.Handler) http.Handler {
	connect := "'self'"
	if s.cfg.SupabaseURL != "" {
		if u, err := url.Parse(s.cfg.SupabaseURL); err == nil {
			ws := "wss://"
			if u.Scheme == "http" {
				ws = "ws://"
			}
			connect += " " + ws + u.Host
		}
	}
	csp := "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src " + connect +
		"; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("X-Frame-Options", "DENY")
		if s.cfg.secure() {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		next.ServeHTTP(w, r)
	})
}

func cacheFor(d time.Duration, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age="+strconv.Itoa(int(d/time.Second)))
		h.ServeHTTP(w, r)
	})
}

// account is one the person belongs to (RLS lists only those).
type account struct {
	ID   string
	Name string
	Role string
}

const sqlAccounts = `select a.id::text, a.name,
       coalesce((select m.role from keapsync.members m
                  where m.account_id = a.id and m.user_id = (select auth.uid())), 'viewer')
  from keapsync.accounts a
 order by keapsync.account_can_sync(a.id) desc, a.name, a.id` // a synced account is the first page

// loadAccounts fills v.Accounts and picks v.Account from ?account= (or the form), defaulting to
// the first. An account RLS hides is simply not in the list: 404, not "forbidden".
func (s *Server) loadAccounts(r *http.Request, tx pgx.Tx, v *view) error {
	rows, err := tx.Query(r.Context(), sqlAccounts)
	if err != nil {
		return err
	}
	v.Accounts, err = pgx.CollectRows(rows, pgx.RowToStructByPos[account])
	if err != nil {
		return err
	}
	want := r.FormValue("account")
	for i := range v.Accounts {
		if want == "" || v.Accounts[i].ID == want {
			v.Account = &v.Accounts[i]
			break
		}
	}
	if want != "" && v.Account == nil {
		return &pageError{Status: 404, Code: "no_account", Msg: "No such account, or you are not a member of it."}
	}
	v.Live = s.liveConfig(v.Account)
	return nil
}
