package sandbox

import (
	"net/http"
	"strings"
	"sync"
	"time"
)

// credential identifies who a REST call is billed to: an OAuth client (all its tokens share
// one budget) or a personal access key.
type credential struct {
	kind string // "oauth" or "key"
	id   string // client id or the key itself (never logged)
}

type grant struct {
	clientID    string
	redirectURI string // authorization codes only
	expires     time.Time
}

// authority issues and checks OAuth codes and tokens and personal keys.
type authority struct {
	mu                                  sync.Mutex
	clock                               Clock
	clientID, clientSecret, personalKey string
	tenant                              string
	accessTTL, refreshTTL               time.Duration
	autoApprove                         bool

	codes   map[string]grant
	access  map[string]grant
	refresh map[string]grant
}

func newAuthority(o Options, clientID, clientSecret, key string) *authority {
	return &authority{
		clock: o.Clock, clientID: clientID, clientSecret: clientSecret, personalKey: key, tenant: o.Tenant,
		accessTTL: o.AccessTTL, refreshTTL: o.RefreshTTL, autoApprove: o.AutoApprove,
		codes: map[string]grant{}, access: map[string]grant{}, refresh: map[string]grant{},
	}
}

// Gateway faults use Apigee's envelope (FACTS.md §3); the specs never mention them.
func fault(status int, text, code string) *apiError {
	return &apiError{status: status, body: map[string]any{"fault": map[string]any{"faultstring": text, "detail": map[string]string{"errorcode": code}}}}
}

var (
	errNoToken      = fault(http.StatusUnauthorized, "Invalid access token", "oauth.v2.InvalidAccessToken")
	errBadToken     = fault(http.StatusUnauthorized, "Invalid Access Token", "keymanagement.service.invalid_access_token")
	errExpiredToken = fault(http.StatusUnauthorized, "Access Token expired", "keymanagement.service.access_token_expired")
	// Keap's text for a wrong X-Keap-API-Key is not on record; this is Apigee's VerifyAPIKey fault.
	errBadKey = fault(http.StatusUnauthorized, "Invalid ApiKey", "oauth.v2.InvalidApiKey")
)

// authenticate reads X-Keap-API-Key or Authorization: Bearer. A bearer value may be an access
// token or a personal key (third parties report both work; FACTS.md §1).
func (a *authority) authenticate(r *http.Request) (credential, error) {
	if key := r.Header.Get("X-Keap-API-Key"); key != "" {
		if a.isKey(key) {
			return credential{kind: "key", id: key}, nil
		}
		return credential{}, errBadKey
	}
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return credential{}, errNoToken
	}
	if a.isKey(token) {
		return credential{kind: "key", id: token}, nil
	}
	a.mu.Lock()
	g, found := a.access[token]
	a.mu.Unlock()
	switch {
	case !found:
		return credential{}, errBadToken
	case !a.clock.Now().Before(g.expires):
		return credential{}, errExpiredToken
	}
	return credential{kind: "oauth", id: g.clientID}, nil
}

func (a *authority) isKey(k string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.personalKey != "" && k == a.personalKey
}

// Tokens are the token-endpoint response.
type Tokens struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
	Scope        string `json:"scope"`
}

// issue mints an access/refresh pair; the caller holds a.mu.
func (a *authority) issue(clientID string) Tokens {
	now := a.clock.Now()
	t := Tokens{AccessToken: newSecret(), TokenType: "bearer", ExpiresIn: int64(a.accessTTL / time.Second),
		RefreshToken: newSecret(), Scope: "full|" + a.tenant}
	a.access[t.AccessToken] = grant{clientID: clientID, expires: now.Add(a.accessTTL)}
	a.refresh[t.RefreshToken] = grant{clientID: clientID, expires: now.Add(a.refreshTTL)}
	return t
}

func (a *authority) newCode(clientID, redirectURI string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	code := newSecret()
	// Codes live 10 minutes (RFC 6749 §4.1.2's recommended maximum; Keap's is unknown).
	a.codes[code] = grant{clientID: clientID, redirectURI: redirectURI, expires: a.clock.Now().Add(10 * time.Minute)}
	return code
}

// RevokeTokens kills every issued token, or only the given access or refresh token.
func (a *authority) revoke(token string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	if token == "" {
		n := len(a.access) + len(a.refresh)
		a.access, a.refresh = map[string]grant{}, map[string]grant{}
		return n
	}
	n := 0
	for _, m := range []map[string]grant{a.access, a.refresh} {
		if _, ok := m[token]; ok {
			delete(m, token)
			n++
		}
	}
	return n
}
