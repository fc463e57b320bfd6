// Package compat embeds the Supabase compatibility bootstrap for plain PostgreSQL: the roles,
// auth and realtime objects that Supabase provides and the migrations rely on.
package compat

import _ "embed"

// Bootstrap is supabase_compat.sql. Idempotent; never for a real Supabase project.
//
//go:embed supabase_compat.sql
var Bootstrap string

// Path is where the bootstrap lives in the repository, for messages.
const Path = "sql/compat/supabase_compat.sql"
