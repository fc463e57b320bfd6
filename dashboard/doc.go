// Package dashboard will serve keapsync's server-rendered dashboard: sync health, KPIs,
// conflicts, dead letters and history, behind Supabase Auth and reading under RLS. It reads the
// keapsync views and calls the SQL functions of supabase/migrations; it holds no sync rules.
package dashboard
