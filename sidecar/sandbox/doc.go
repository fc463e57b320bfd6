// Package sandbox is an in-memory emulator of the parts of Keap's API keapsync uses: OAuth2,
// REST v1 (contacts, tags, orders, subscriptions, REST Hooks), two v2 subscription paths,
// Keap's throttles and error bodies, plus a test surface under /_sandbox.
//
// It is only as useful as it is faithful. Ground truth is docs/keap/FACTS.md and
// the published OpenAPI documents (embedded in package keapspec); every response shape is checked
// against those documents by the contract tests. Where the sources are silent the sandbox makes
// the most plausible choice and README.md in this folder lists each one; where several answers
// are plausible, Options.Profile picks one (the "documented" and "hardest" presets), so a suite
// can run under each.
//
// In tests:
//
//	srv, err := sandbox.New(sandbox.Options{Clock: clock, Seed: 1, Contacts: 100, AutoApprove: true,
//		RetryBackoff: sandbox.ScaledBackoff(0.001)})
//	err = srv.Start(ctx)             // listens on a free 127.0.0.1 port
//	defer srv.Close()
//	base := srv.URL() + "/crm/rest/v1"
//	creds := srv.Credentials()       // client id/secret for /token, personal key for X-Keap-API-Key
//	tok := srv.IssueTokens()         // skip the code flow when OAuth is not under test
//	srv.EditContact(7, map[string]any{"given_name": "Ann"}) // a person edits in Keap: hooks fire
//	srv.Advance(24 * time.Hour)      // tokens expire, throttle windows roll, retries come due
//
// Put a keapspec.Transport under the client under test so its requests and the sandbox's
// responses are both held to Keap's documents.
package sandbox
