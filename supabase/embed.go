// Package supabase embeds the Supabase project's migrations (the single source of the schema)
// and demo seed, so the keapsync binary can apply them with `keapsync migrate`.
package supabase

import "embed"

// Migrations holds migrations/<version>_<name>.sql, applied in name order.
//
//go:embed migrations/*.sql
var Migrations embed.FS

// Seed is the demo data (seed.sql): data only, never schema.
//
//go:embed seed.sql
var Seed string
