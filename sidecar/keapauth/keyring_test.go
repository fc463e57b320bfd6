package keapauth_test

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/keapsync/keapsync/sidecar/keapauth"
)

// KEAPSYNC_SECRET_KEY: base64 of 32 bytes, several for rotation; each wrong one is named by its
// place. The OAuth settings name what is missing.
func TestKeyringAndConfigErrors(t *testing.T) {
	t.Parallel()
	a := keapauth.NewKey()
	b := keapauth.NewKey()
	if _, err := keapauth.ParseKeyring(" " + a + " , " + b + ","); err != nil {
		t.Errorf("two keys with blanks: %v", err)
	}
	short := base64.StdEncoding.EncodeToString(make([]byte, 16))
	for value, want := range map[string]string{
		"":                 "no key given",
		" , ":              "no key given",
		a + ",not base64!": "key 2 is not base64",
		short:              "key 1 has 16 bytes, want 32",
	} {
		if _, err := keapauth.ParseKeyring(value); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", value, err, want)
		}
	}
	for want, cfg := range map[string]keapauth.Config{
		"KEAP_CLIENT_ID is required":     {ClientSecret: "s"},
		"KEAP_CLIENT_SECRET is required": {ClientID: "c"},
	} {
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%+v: %v, want %q", cfg, err, want)
		}
	}
	if err := (keapauth.Config{ClientID: "c", ClientSecret: "s"}).Validate(); err != nil {
		t.Errorf("both set: %v", err)
	}
}
