// Package dashboard serves keapsync's server-rendered dashboard: KPIs, sync health, conflicts,
// dead letters, change history and the synced data, behind Supabase Auth.
//
// Every request verifies the user's JWT and runs its queries in a transaction as that user
// (role authenticated, request.jwt.claims set), so row-level security, not this package, decides
// what a person sees and may do. Actions call the keapsync SQL functions that the CLI also calls;
// the package holds no sync rules. Pages refresh their fragments live on Realtime broadcasts (or,
// without Supabase, on Server-Sent Events fed by LISTEN keapsync).
//
// # Supabase Auth
//
// Password sign-in, session refresh and sign-out go through supabase-go
// (github.com/supabase-community/supabase-go v0.0.4, the only version the Go module proxy
// serves) and its auth client, gotrue-go v1.2.0 (the proxy does not serve its successor,
// github.com/supabase-community/auth-go). We call the auth client, not supabase-go's
// Client.SignInWithEmailPassword or RefreshToken: those store the session in the client, which
// suits one user per process, not a server for many. gotrue-go builds its requests without a
// context, so each call gets, through its WithClient hook, a transport that carries our context
// and a 10 s timeout.
//
// What it cannot do, and so stays plain HTTP in gotrue.go:
//   - The magic link with PKCE. gotrue-go's OTP request has no code_challenge,
//     code_challenge_method or redirect_to; without them Supabase Auth sends an implicit-flow
//     link whose tokens arrive in the URL #fragment, which a server never sees (and our CSP runs
//     no inline script to read it).
//   - The PKCE code exchange. gotrue-go sends the code as "code"; Supabase Auth's pkce grant
//     reads "auth_code", so the exchange would always be refused.
//
// Access tokens are verified here (JWKS or the legacy secret), not by a round trip to
// Supabase Auth per request.
//
// # JSON API
//
// /api/v1/ serves what the pages show as JSON, described by the OpenAPI 3 document at
// /api/v1/openapi.json. It takes the same Supabase access token as a Bearer header and queries
// as that person, so row-level security scopes it exactly as it scopes the pages.
package dashboard
