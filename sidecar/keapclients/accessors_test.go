package keapclients_test

import (
	"testing"

	"github.com/keapsync/keapsync/sidecar/devtools/pgtest"
)

// With a personal key the registry says so and has no token keeper.
func TestRegistryNamesItsCredential(t *testing.T) {
	t.Parallel()
	r := registry(t, pgtest.Pool(t), "personal-key")
	if r.APIKey() != "personal-key" || r.Keeper() != nil {
		t.Errorf("APIKey %q, Keeper %v", r.APIKey(), r.Keeper())
	}
}
