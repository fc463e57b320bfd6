package keapclients_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/keapsync/keapsync/sidecar/devtools/pgtest"
	"github.com/keapsync/keapsync/sidecar/keap"
	"github.com/keapsync/keapsync/sidecar/keapauth"
	"github.com/keapsync/keapsync/sidecar/keapclients"
)

// fakeKeap is Keap's token endpoint (a code "x" is exchanged for the access token "AT-x" of
// the tenant x.example) and one contact, answering whoever presents a token it issued; it
// records the Authorization header of each API call.
type fakeKeap struct {
	*httptest.Server
	mu    sync.Mutex
	calls []string
}

func newFakeKeap(t *testing.T) *fakeKeap {
	f := &fakeKeap{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/token" {
			code := r.FormValue("code")
			fmt.Fprintf(w, `{"access_token":"AT-%s","refresh_token":"RT-%s","token_type":"bearer","expires_in":86400,"scope":"full|%s.example"}`, code, code, code)
			return
		}
		f.mu.Lock()
		f.calls = append(f.calls, r.Header.Get("Authorization"))
		f.mu.Unlock()
		if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer AT-") {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		fmt.Fprint(w, `{"id":1,"given_name":"Ada"}`)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeKeap) authorizations() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

// With OAuth each account's client presents that account's own token, never another account's;
// an account whose tokens were revoked makes no call at all and says a person must log in again.
func TestOAuthClientsPresentTheirAccountsToken(t *testing.T) {
	t.Parallel()
	db := pgtest.Pool(t)
	ctx := context.Background()
	f := newFakeKeap(t)
	keys, err := keapauth.ParseKeyring(keapauth.NewKey())
	if err != nil {
		t.Fatal(err)
	}
	keeper, err := keapauth.New(keapauth.Config{ClientID: "app", ClientSecret: "secret", TokenURL: f.URL + "/token"}, db, keys)
	if err != nil {
		t.Fatal(err)
	}
	account := map[string]string{}
	for _, code := range []string{"a", "b"} {
		if account[code], _, err = keeper.Connect(ctx, code, "http://127.0.0.1/oauth/callback"); err != nil {
			t.Fatal(err)
		}
	}
	r, err := keapclients.New(keapclients.Config{APIURL: f.URL + "/crm/rest", ClientID: "app", Keeper: keeper}, db)
	if err != nil {
		t.Fatal(err)
	}
	if r.Keeper() != keeper || r.APIKey() != "" {
		t.Errorf("Keeper %v, APIKey %q: want the keeper and no key", r.Keeper(), r.APIKey())
	}
	for _, code := range []string{"a", "b", "a"} {
		cl, err := r.For(ctx, account[code])
		if err != nil {
			t.Fatal(err)
		}
		if cl.AppBudget().Key() != keap.OAuthBudgetKey("app") {
			t.Errorf("account %s draws on %q, want the OAuth app's budget", code, cl.AppBudget().Key())
		}
		if _, err := cl.GetContact(ctx, 1); err != nil {
			t.Fatalf("account %s: %v", code, err)
		}
	}
	if got, want := strings.Join(f.authorizations(), ","), "Bearer AT-a,Bearer AT-b,Bearer AT-a"; got != want {
		t.Errorf("tokens presented %s, want %s", got, want)
	}

	if err := keeper.Revoke(ctx, account["b"]); err != nil {
		t.Fatal(err)
	}
	cl, err := r.For(ctx, account["b"])
	if err != nil {
		t.Fatal(err)
	}
	_, err = cl.GetContact(ctx, 1)
	if err == nil || !strings.Contains(err.Error(), "auth login") {
		t.Errorf("a call for a revoked account: %v; want the keeper's word that a person must log in", err)
	}
	if n := len(f.authorizations()); n != 3 {
		t.Errorf("Keap got %d calls, want 3: a revoked account must make none", n)
	}
}
