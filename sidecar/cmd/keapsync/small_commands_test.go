package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/keapsync/keapsync/sidecar/devtools/testlog"
	"github.com/keapsync/keapsync/sidecar/keapauth"
)

// keygen prints a key the keyring takes, a new one each time.
func TestKeygen(t *testing.T) {
	t.Parallel()
	a, err := runApp(t, "keygen")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := runApp(t, "keygen")
	if _, err := keapauth.ParseKeyring(strings.TrimSpace(a)); err != nil || a == b {
		t.Errorf("keygen printed %q then %q (%v)", a, b, err)
	}
}

// The secret path token of a hook URL is cut in output; other URLs are shown whole.
func TestRedactHookURL(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"https://k.example/hooks/abcdefghijklmnop": "https://k.example/hooks/abcdef…",
		"https://k.example/hooks/abc":              "https://k.example/hooks/abc",
		"https://other.example/webhook":            "https://other.example/webhook",
	} {
		if got := redactHookURL(in); got != want {
			t.Errorf("redactHookURL(%s) = %s, want %s", in, got, want)
		}
	}
}

// keapsync sandbox prints where the emulator serves and its credentials, and serves until
// interrupted.
func TestSandboxCommandServesUntilInterrupted(t *testing.T) {
	t.Parallel()
	cfg := readWith(t, sandboxCommand().Flags, readSandboxConfig, "--addr", "127.0.0.1:0", "--contacts", "2", "--profile", "hardest")
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var out testlog.Buffer
	done := make(chan error, 1)
	go func() { done <- serveSandbox(ctx, &out, cfg) }()
	for !strings.Contains(out.String(), "personal key:") {
		select {
		case err := <-done:
			t.Fatalf("the sandbox ended: %v\n%s", err, out.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("interrupted: %v", err)
	}
	for _, want := range []string{"Keap sandbox at http://127.0.0.1:", "REST v1:", "profile:       hardest", "client id:"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("printed %q, want %q", out.String(), want)
		}
	}
}
