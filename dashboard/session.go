package dashboard

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"sync"
	"time"
)

const (
	cookieAccess  = "ks_at"
	cookieRefresh = "ks_rt"
	cookieCSRF    = "ks_csrf"
	cookiePKCE    = "ks_pkce"
)

// user is the signed-in person of a request.
type user struct {
	*Claims
	AccessToken string
	CSRF        string
}

type ctxKey struct{}

func userOf(ctx context.Context) *user { u, _ := ctx.Value(ctxKey{}).(*user); return u }

func (s *Server) setCookie(w http.ResponseWriter, name, value string, maxAge time.Duration) {
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: value, Path: "/", MaxAge: int(maxAge / time.Second),
		HttpOnly: true, Secure: s.cfg.secure(),
		// Lax, not Strict: a magic link opened from a mail client is a cross-site navigation that
		// must arrive with the PKCE cookie. Every POST also needs the CSRF token.
		SameSite: http.SameSiteLaxMode,
	})
}

func (s *Server) clearSession(w http.ResponseWriter) {
	for _, n := range []string{cookieAccess, cookieRefresh} {
		http.SetCookie(w, &http.Cookie{Name: n, Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
			Secure: s.cfg.secure(), SameSite: http.SameSiteLaxMode})
	}
}

func (s *Server) storeSession(w http.ResponseWriter, access, refresh string) {
	// The access cookie outlives the token on purpose: an expired token plus the refresh cookie
	// is how the next request knows to refresh rather than ask for a password.
	s.setCookie(w, cookieAccess, access, 7*24*time.Hour)
	s.setCookie(w, cookieRefresh, refresh, 7*24*time.Hour)
}

// csrfToken returns the request's CSRF token, issuing the cookie if it is missing. Double submit:
// forms carry the token, the cookie proves it is ours; CrossOriginProtection guards the rest.
func (s *Server) csrfToken(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(cookieCSRF); err == nil && len(c.Value) >= 32 {
		return c.Value
	}
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	tok := base64.RawURLEncoding.EncodeToString(b)
	s.setCookie(w, cookieCSRF, tok, 30*24*time.Hour)
	// Let a form on the page being rendered use it at once.
	r.AddCookie(&http.Cookie{Name: cookieCSRF, Value: tok})
	return tok
}

func checkCSRF(r *http.Request) error {
	c, err := r.Cookie(cookieCSRF)
	if err != nil || len(c.Value) < 32 {
		return errCSRF
	}
	if subtle.ConstantTimeCompare([]byte(c.Value), []byte(r.PostFormValue("csrf"))) != 1 {
		return errCSRF
	}
	return nil
}

// authenticate returns the request's user, refreshing the session first when the access token is
// expired or about to be. Nil means: show the sign-in page.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) *user {
	access := cookieValue(r, cookieAccess)
	refresh := cookieValue(r, cookieRefresh)
	if access == "" && refresh == "" {
		return nil
	}
	claims, err := s.verify.Verify(access)
	if err == nil && claims.Expires.Sub(s.cfg.Now()) > s.cfg.RefreshBefore {
		return &user{Claims: claims, AccessToken: access}
	}
	if refresh != "" {
		sess, rerr := s.refresh(r.Context(), refresh)
		if rerr == nil {
			if c, verr := s.verify.Verify(sess.AccessToken); verr == nil {
				s.storeSession(w, sess.AccessToken, sess.RefreshToken)
				return &user{Claims: c, AccessToken: sess.AccessToken}
			} else {
				s.log.Warn("refreshed token does not verify", "err", verr)
			}
		} else {
			s.log.Info("session refresh failed", "err", rerr)
		}
	}
	if err == nil {
		// Refresh failed but the token is still valid for a little while: carry on.
		return &user{Claims: claims, AccessToken: access}
	}
	s.log.Info("session refused", "err", err)
	s.clearSession(w)
	return nil
}

func cookieValue(r *http.Request, name string) string {
	if c, err := r.Cookie(name); err == nil {
		return c.Value
	}
	return ""
}

// refresher makes parallel requests of one browser (page, fragments, event stream) share one
// refresh: GoTrue refresh tokens are single-use, and a second use may revoke the session.
type refresher struct {
	mu   sync.Mutex
	done map[string]*refreshResult
}

type refreshResult struct {
	ready chan struct{}
	sess  *session
	err   error
	at    time.Time
}

func (s *Server) refresh(ctx context.Context, token string) (*session, error) {
	rf := &s.refresher
	rf.mu.Lock()
	if rf.done == nil {
		rf.done = map[string]*refreshResult{}
	}
	now := s.cfg.Now()
	for k, v := range rf.done {
		if now.Sub(v.at) > time.Minute {
			delete(rf.done, k)
		}
	}
	res, ok := rf.done[token]
	if !ok {
		res = &refreshResult{ready: make(chan struct{}), at: now}
		rf.done[token] = res
	}
	rf.mu.Unlock()
	if ok {
		select {
		case <-res.ready:
			return res.sess, res.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	// Detached from the request: the result serves the other waiters too.
	res.sess, res.err = s.doRefresh(context.WithoutCancel(ctx), token)
	close(res.ready)
	return res.sess, res.err
}

func (s *Server) doRefresh(ctx context.Context, token string) (*session, error) {
	if s.mint != nil {
		sub, email, err := s.mint.checkRefresh(token)
		if err != nil {
			return nil, err
		}
		return s.localSession(sub, email)
	}
	return s.auth.refresh(ctx, token)
}

func (s *Server) localSession(sub, email string) (*session, error) {
	at, _, err := s.mint.access(sub, email)
	if err != nil {
		return nil, err
	}
	rt, err := s.mint.refresh(sub, email)
	if err != nil {
		return nil, err
	}
	return &session{AccessToken: at, RefreshToken: rt}, nil
}

// safeNext keeps post-sign-in redirects on this site.
func safeNext(next string) string {
	u, err := url.Parse(next)
	if err != nil || next == "" || u.IsAbs() || u.Host != "" || len(next) < 1 || next[0] != '/' ||
		(len(next) > 1 && (next[1] == '/' || next[1] == '\\')) {
		return "/"
	}
	return next
}

var errCSRF = errors.New("csrf token missing or wrong")
