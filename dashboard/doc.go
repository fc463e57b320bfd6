// Package dashboard serves keapsync's server-rendered dashboard: KPIs, sync health, conflicts,
// dead letters, change history and the synced data, behind Supabase Auth.
//
// Every request verifies the user's JWT and runs its queries in a transaction as that user
// (role authenticated, request.jwt.claims set), so row-level security, not this package, decides
// what a person sees and may do. Actions call the keapsync SQL functions that the CLI also calls;
// the package holds no sync rules. Pages refresh their fragments live on Realtime broadcasts (or,
// without Supabase, on Server-Sent Events fed by LISTEN keapsync).
package dashboard
