package sandbox

import (
	"encoding/base64"
	"html/template"
	"net/http"
	"net/url"
	"strings"
)

// OAuth errors follow RFC 6749 JSON with Keap's observed texts (FACTS.md §1).
func oauthError(status int, code, desc string) *apiError {
	return &apiError{status: status, body: map[string]string{"error": code, "error_description": desc}}
}

var (
	errBadClient       = oauthError(http.StatusUnauthorized, "invalid_grant", "Unable to authenticate username and password")
	errBadRefresh      = oauthError(http.StatusBadRequest, "invalid_grant", "Invalid refresh token")
	errMissingRefresh  = oauthError(http.StatusBadRequest, "invalid_request", "Invalid Refresh Token")
	errBadCode         = oauthError(http.StatusBadRequest, "invalid_grant", "Invalid authorization code")
	errUnsupportedType = oauthError(http.StatusBadRequest, "unsupported_grant_type", "Unsupported grant type")
)

var consentPage = template.Must(template.New("consent").Parse(`<!doctype html>
<html><head><title>Keap sandbox: authorize</title></head>
<body style="font-family:sans-serif;max-width:32em;margin:4em auto">
<h1>Allow access?</h1>
<p>An application (client <code>{{.ClientID}}</code>) asks for full access to the sandbox account
<b>{{.Tenant}}</b>.</p>
<form method="post" action="/app/oauth/authorize">
{{range $k, $v := .Params}}<input type="hidden" name="{{$k}}" value="{{$v}}">{{end}}
<button name="decision" value="allow">Allow</button>
<button name="decision" value="deny">Deny</button>
</form></body></html>`))

// authorize serves the consent page (GET) and the decision (POST). With auto-approve a GET
// redirects at once with a code. Bad client or redirect URI never redirect (RFC 6749 §4.1.2.1).
func (a *authority) authorize(w http.ResponseWriter, r *http.Request) error {
	if err := r.ParseForm(); err != nil {
		return badRequest("invalid form")
	}
	p := r.Form
	clientID, redirectURI := p.Get("client_id"), p.Get("redirect_uri")
	if clientID != a.clientID {
		http.Error(w, "unknown client_id", http.StatusBadRequest)
		return nil
	}
	target, err := url.Parse(redirectURI)
	if err != nil || !(target.Scheme == "https" || (target.Scheme == "http" && isLoopbackHost(target.Hostname()))) {
		// Keap requires HTTPS; the sandbox also allows http on loopback for local receivers.
		http.Error(w, "redirect_uri must be https (or http on loopback)", http.StatusBadRequest)
		return nil
	}
	q := target.Query()
	if s := p.Get("state"); s != "" {
		q.Set("state", s)
	}
	deny := func(code, desc string) {
		q.Set("error", code)
		q.Set("error_description", desc)
		target.RawQuery = q.Encode()
		http.Redirect(w, r, target.String(), http.StatusFound)
	}
	switch {
	case p.Get("response_type") != "code":
		deny("unsupported_response_type", "response_type must be code")
		return nil
	case p.Get("scope") != "" && p.Get("scope") != "full":
		deny("invalid_scope", "scope must be full")
		return nil
	}
	approve := r.Method == http.MethodPost && p.Get("decision") == "allow"
	if r.Method == http.MethodGet {
		a.mu.Lock()
		auto := a.autoApprove
		a.mu.Unlock()
		if !auto {
			params := map[string]string{}
			for _, k := range []string{"client_id", "redirect_uri", "response_type", "scope", "state"} {
				params[k] = p.Get(k)
			}
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			return consentPage.Execute(w, map[string]any{"ClientID": clientID, "Tenant": a.tenant, "Params": params})
		}
		approve = true
	}
	if !approve {
		deny("access_denied", "User denied access to resource")
		return nil
	}
	q.Set("code", a.newCode(clientID, redirectURI))
	target.RawQuery = q.Encode()
	http.Redirect(w, r, target.String(), http.StatusFound)
	return nil
}

// token serves POST /token: authorization_code with client credentials in the form body,
// refresh_token with HTTP Basic client auth. Each refresh rotates: the old refresh token dies
// at once. Access tokens issued earlier stay valid until they expire.
func (a *authority) token(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodPost {
		return oauthError(http.StatusMethodNotAllowed, "invalid_request", "POST required")
	}
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		return oauthError(http.StatusBadRequest, "invalid_request", "Content-Type must be application/x-www-form-urlencoded")
	}
	if err := r.ParseForm(); err != nil {
		return oauthError(http.StatusBadRequest, "invalid_request", "invalid form body")
	}
	f := r.PostForm
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.clock.Now()
	switch f.Get("grant_type") {
	case "authorization_code":
		if f.Get("client_id") != a.clientID || f.Get("client_secret") != a.clientSecret {
			return errBadClient
		}
		code := f.Get("code")
		g, ok := a.codes[code]
		delete(a.codes, code) // single use, even when the rest of the request is wrong
		if !ok || !now.Before(g.expires) || g.clientID != a.clientID || g.redirectURI != f.Get("redirect_uri") {
			return errBadCode
		}
		writeJSON(w, http.StatusOK, a.issue(g.clientID))
		return nil
	case "refresh_token":
		id, secret, ok := basicAuth(r)
		if !ok || id != a.clientID || secret != a.clientSecret {
			return errBadClient
		}
		rt := f.Get("refresh_token")
		if rt == "" {
			return errMissingRefresh
		}
		g, ok := a.refresh[rt]
		delete(a.refresh, rt) // rotation: the presented token is dead whatever happens next
		if !ok || !now.Before(g.expires) || g.clientID != id {
			return errBadRefresh
		}
		writeJSON(w, http.StatusOK, a.issue(g.clientID))
		return nil
	}
	return errUnsupportedType
}

func basicAuth(r *http.Request) (string, string, bool) {
	scheme, v, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Basic") {
		return "", "", false
	}
	raw, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		return "", "", false
	}
	id, secret, ok := strings.Cut(string(raw), ":")
	return id, secret, ok
}
