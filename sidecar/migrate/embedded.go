package migrate

import (
	"log/slog"

	"github.com/keapsync/keapsync/sql/compat"
	"github.com/keapsync/keapsync/supabase"
)

// Embedded is the Migrator for the migrations and bootstrap built into this binary.
func Embedded(log *slog.Logger) (*Migrator, error) {
	ms, err := Load(supabase.Migrations, "migrations")
	if err != nil {
		return nil, err
	}
	return &Migrator{Migrations: ms, Bootstrap: compat.Bootstrap, BootstrapPath: compat.Path, Log: log}, nil
}
