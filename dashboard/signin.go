package dashboard

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"
)

type signinData struct {
	Local   bool
	Next    string
	Message string
	Email   string
}

func (s *Server) signinData(r *http.Request, msg string) *signinData {
	next := r.FormValue("next")
	if r.URL.Path != "/signin" && r.URL.Path != "/auth/callback" {
		next = r.URL.RequestURI()
	}
	return &signinData{Local: s.cfg.Local, Next: safeNext(next), Message: msg}
}

func (s *Server) signinPage(w http.ResponseWriter, r *http.Request) {
	v := &view{Title: "Sign in", CSRF: s.csrfToken(w, r), Data: s.signinData(r, "")}
	if err := s.render(w, r, http.StatusOK, "signin", v); err != nil {
		s.fail(w, r, err)
	}
}

// signinFailed re-shows the form with what to do; never which part was wrong.
func (s *Server) signinFailed(w http.ResponseWriter, r *http.Request, status int, msg string) {
	d := s.signinData(r, msg)
	d.Email = r.PostFormValue("email")
	v := &view{Title: "Sign in", CSRF: s.csrfToken(w, r), Data: d}
	if err := s.render(w, r, status, "signin", v); err != nil {
		s.fail(w, r, err)
	}
}

// signinForm checks what every sign-in POST needs; false means the response is written.
func (s *Server) signinForm(w http.ResponseWriter, r *http.Request) bool {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := checkCSRF(r); err != nil {
		s.signinFailed(w, r, http.StatusForbidden, "The sign-in form expired. Try again.")
		return false
	}
	return true
}

func (s *Server) signinPassword(w http.ResponseWriter, r *http.Request) {
	if !s.signinForm(w, r) {
		return
	}
	if s.auth == nil {
		s.signinFailed(w, r, http.StatusBadRequest, "This dashboard runs in local mode: use the demo sign-in button.")
		return
	}
	sess, err := s.auth.password(r.Context(), strings.TrimSpace(r.PostFormValue("email")), r.PostFormValue("password"))
	if err != nil {
		s.authError(w, r, err)
		return
	}
	s.startSession(w, r, sess)
}

func (s *Server) authError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, errAuthRefused) {
		s.log.Info("sign-in refused", "err", err)
		s.signinFailed(w, r, http.StatusUnauthorized, "That email and password do not match, or the link has expired. Try again.")
		return
	}
	s.log.Error("auth server unreachable", "err", err)
	s.signinFailed(w, r, http.StatusBadGateway, "Supabase Auth did not answer. Try again in a minute.")
}

// startSession stores a session GoTrue (or local mode) issued, after verifying it like any
// request would, and goes where the person was heading.
func (s *Server) startSession(w http.ResponseWriter, r *http.Request, sess *session) {
	if _, err := s.verify.Verify(sess.AccessToken); err != nil {
		s.log.Error("auth server issued a token we cannot verify: check SUPABASE_URL and SUPABASE_JWT_SECRET", "err", err)
		s.signinFailed(w, r, http.StatusBadGateway, "Signed in, but the token could not be verified. An operator must check the dashboard's Supabase settings.")
		return
	}
	s.storeSession(w, sess.AccessToken, sess.RefreshToken)
	http.Redirect(w, r, safeNext(r.FormValue("next")), http.StatusSeeOther)
}

func (s *Server) signinMagic(w http.ResponseWriter, r *http.Request) {
	if !s.signinForm(w, r) {
		return
	}
	if s.auth == nil {
		s.signinFailed(w, r, http.StatusBadRequest, "This dashboard runs in local mode: use the demo sign-in button.")
		return
	}
	verifier, challenge := pkcePair()
	s.setCookie(w, cookiePKCE, verifier, 30*time.Minute)
	back := s.cfg.PublicURL + "/auth/callback?next=" + url.QueryEscape(safeNext(r.PostFormValue("next")))
	if err := s.auth.magicLink(r.Context(), strings.TrimSpace(r.PostFormValue("email")), back, challenge); err != nil && !errors.Is(err, errAuthRefused) {
		s.authError(w, r, err)
		return
	}
	// Same answer whether or not the address has an account: no user enumeration.
	http.Redirect(w, r, "/signin?done=magic", http.StatusSeeOther)
}

// authCallback finishes a magic link: GoTrue sends the browser here with ?code= (PKCE).
func (s *Server) authCallback(w http.ResponseWriter, r *http.Request) {
	code := r.URL.Query().Get("code")
	verifier := cookieValue(r, cookiePKCE)
	if s.auth == nil || code == "" || verifier == "" {
		s.signinFailed(w, r, http.StatusBadRequest, "That sign-in link is incomplete or was opened in another browser. Ask for a new one.")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: cookiePKCE, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: s.cfg.secure()})
	sess, err := s.auth.exchange(r.Context(), code, verifier)
	if err != nil {
		s.authError(w, r, err)
		return
	}
	s.startSession(w, r, sess)
}

// signinLocal is local mode's only sign-in: the demo user, no password (Validate guarantees
// there is no Supabase Auth this could bypass).
func (s *Server) signinLocal(w http.ResponseWriter, r *http.Request) {
	if !s.signinForm(w, r) {
		return
	}
	if s.mint == nil {
		s.signinFailed(w, r, http.StatusNotFound, "Local sign-in is off: sign in with your email.")
		return
	}
	sess, err := s.localSession(s.cfg.LocalUserID, "demo@keapsync.local")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.startSession(w, r, sess)
}

func (s *Server) signout(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := checkCSRF(r); err != nil {
		s.fail(w, r, &pageError{Status: 403, Code: "csrf", Msg: "This form has expired. Reload the page and try again.", Err: err})
		return
	}
	if s.auth != nil {
		if at := cookieValue(r, cookieAccess); at != "" {
			if err := s.auth.logout(r.Context(), at); err != nil {
				s.log.Info("logout at auth server failed; cookies cleared anyway", "err", err)
			}
		}
	}
	s.clearSession(w)
	http.Redirect(w, r, "/signin?done=signedout", http.StatusSeeOther)
}
