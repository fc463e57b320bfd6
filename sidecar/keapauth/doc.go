// Package keapauth keeps Keap OAuth2 tokens alive: it runs the authorization code flow, stores
// every token pair in Postgres sealed with AES-256-GCM, refreshes ahead of expiry and before the
// refresh token's 45-day death, and hands the Keap client an access token for each request.
//
// Keap rotates the refresh token on every refresh and kills the old one at once, so two processes
// refreshing together would lock the account out. Refresh is therefore single-flight across
// processes: the refresher takes the token row's lock (SELECT ... FOR UPDATE), re-reads it, and
// if another process refreshed meanwhile uses that result instead of refreshing again. The new
// pair is written and committed in the same transaction, before the access token that came with
// it is handed to anyone (law 5: durable before used).
//
// A process killed between Keap's answer and that commit loses the new pair: the old refresh
// token is already dead, and no design can recover a secret that existed only in a dead process's
// memory. What the design guarantees instead: the window is one local UPDATE long; refreshes
// happen early (by default 3 hours before the 24-hour access token expires), so the previous
// access token, which the refresh does not revoke, keeps sync running while the loss is
// detected; the next refresh attempt gets invalid_grant, which marks the account needs_reauth,
// pauses its sync without dropping queued work, and shows in `keapsync auth status` and the
// dashboard. Nothing is lost silently.
//
// Connecting an account through a server (ConnectHandler) needs a one-time link
// (NewConnectLink, `keapsync auth link`): the listener is reachable by strangers, and whoever
// approves at Keap would otherwise become a tenant. Config.AllowedTenants narrows who may.
//
// Secrets never reach a log line, the database in plaintext, or `auth status`. The sealing key
// (KEAPSYNC_SECRET_KEY) can be rotated: list the new key first and the old after it; each token
// is re-sealed under the new key the next time it is read.
package keapauth
