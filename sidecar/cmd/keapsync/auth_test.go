package main

import (
	"context"
	"strings"
	"testing"

	"github.com/keapsync/keapsync/sidecar/devtools/pgtest"
	"github.com/keapsync/keapsync/sidecar/keapauth"
	"github.com/keapsync/keapsync/sidecar/sandbox"
)

func TestAuthCommands(t *testing.T) {
	t.Parallel()
	sb, err := sandbox.New(sandbox.Options{Seed: 2, Contacts: 2, AutoApprove: true, Unthrottled: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := sb.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	key := keapauth.NewKey()
	creds := sb.Credentials()
	common := append([]string{"--database-url", pgtest.URL(t), "--client-id", creds.ClientID,
		"--auth-url", sb.URL() + "/app/oauth/authorize", "--token-url", sb.URL() + "/token"}, secretFiles(t, creds.ClientSecret, key)...)

	out, err := runApp(t, append([]string{"auth", "login", "--follow"}, common...)...)
	if err != nil || !strings.Contains(out, "connected: account") {
		t.Fatalf("auth login: %v\n%s", err, out)
	}
	out, err = runApp(t, append([]string{"auth", "refresh", "--account", creds.Tenant}, common...)...)
	if err != nil || !strings.Contains(out, "access token valid until") {
		t.Fatalf("auth refresh: %v\n%s", err, out)
	}
	status, err := runApp(t, "auth", "status", "--database-url", common[1])
	if err != nil || !strings.Contains(status, creds.Tenant) || !strings.Contains(status, "full|"+creds.Tenant) {
		t.Fatalf("auth status: %v\n%s", err, status)
	}
	for _, secret := range []string{creds.ClientSecret, key} {
		if strings.Contains(status, secret) {
			t.Error("auth status shows a secret")
		}
	}
	out, err = runApp(t, append([]string{"auth", "revoke", "--account", creds.Tenant}, common...)...)
	if err != nil || !strings.Contains(out, "revoked") {
		t.Fatalf("auth revoke: %v\n%s", err, out)
	}
	status, _ = runApp(t, "auth", "status", "--database-url", common[1])
	if !strings.Contains(status, "not connected") {
		t.Errorf("after revoke, status says:\n%s", status)
	}
	_, err = runApp(t, append([]string{"auth", "refresh", "--account", "nobody"}, common...)...)
	if err == nil || !strings.Contains(err.Error(), `no account "nobody"`) {
		t.Errorf("refresh of an unknown account: %v", err)
	}
}

func TestMissingOrMalformedSettingNamesTheVariable(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"auth", "login", "--database-url", url}, "KEAP_CLIENT_ID"},
		{append([]string{"auth", "login", "--database-url", url, "--client-id", "x"}, secretFiles(t, "y", "")...), "KEAPSYNC_SECRET_KEY"},
		{append([]string{"auth", "login", "--database-url", url, "--client-id", "x"}, secretFiles(t, "y", "bm90IDMyIGJ5dGVz")...), "KEAPSYNC_SECRET_KEY: key 1 has 12 bytes"},
		{append([]string{"auth", "login", "--database-url", url, "--client-id", "x", "--token-url", "::"}, secretFiles(t, "y", "")...), "KEAP_TOKEN_URL"},
		{[]string{"auth", "login", "--database-url", url, "--client-id", "x", "--client-secret-file", "/nonexistent/secret"}, "KEAP_CLIENT_SECRET_FILE"},
	} {
		_, err := runApp(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: err = %v, want one line naming %s", tc.args, err, tc.want)
		}
	}
}

// Secrets come from the environment or a file, never from the command line, where ps shows them.
func TestSecretsNeverFromTheCommandLine(t *testing.T) {
	// Not parallel: it sets the environment, which every app in the process reads.
	url := pgtest.URL(t)
	for _, flag := range []string{"--client-secret", "--secret-key"} {
		args := append([]string{"auth", "login", "--database-url", url, "--client-id", "x", flag, "on-argv"}, secretFiles(t, "y", "")...)
		if flag == "--client-secret" {
			args = args[:len(args)-2]
		}
		_, err := runApp(t, args...)
		if err == nil || !strings.Contains(err.Error(), "visible to every user") || strings.Contains(err.Error(), "on-argv") {
			t.Errorf("%s on the command line: err = %v", flag, err)
		}
	}
	// From the environment, the client secret is taken (the next missing setting is the key).
	t.Setenv("KEAP_CLIENT_SECRET", "from-env")
	_, err := runApp(t, "auth", "login", "--database-url", url, "--client-id", "x")
	if err == nil || !strings.Contains(err.Error(), "KEAPSYNC_SECRET_KEY") {
		t.Errorf("client secret from the environment: err = %v", err)
	}
}
