package keap

import (
	"strings"
	"testing"
)

// Budget keys label metrics and rows anyone who scrapes /metrics or reads the table sees: they
// tell budgets apart without showing the client id or key they stand for.
func TestBudgetKeysHideCredentials(t *testing.T) {
	for _, tc := range []struct{ key, secret, prefix string }{
		{OAuthBudgetKey("client-id-abc"), "client-id-abc", "oauth:"},
		{KeyBudgetKey("KeapAK-secret"), "KeapAK-secret", "key:"},
	} {
		if strings.Contains(tc.key, tc.secret) || !strings.HasPrefix(tc.key, tc.prefix) {
			t.Errorf("budget key %q", tc.key)
		}
	}
	if OAuthBudgetKey("a") == OAuthBudgetKey("b") || OAuthBudgetKey("a") != OAuthBudgetKey("a") {
		t.Error("budget keys must tell client ids apart, stably")
	}
}
