package objecttype_test

import (
	"slices"
	"testing"

	"github.com/keapsync/keapsync/sidecar/objecttype"
)

// Names and SweptNames keep the registry's (dependency) order; SweptNames leaves out the types
// backfill and reconcile do not cover.
func TestNamesKeepTheRegistryOrder(t *testing.T) {
	t.Parallel()
	all := objecttype.Names()
	if len(all) != len(objecttype.All) {
		t.Fatalf("Names %v, registry has %d types", all, len(objecttype.All))
	}
	var swept []string
	for i, ty := range objecttype.All {
		if all[i] != ty.Name {
			t.Errorf("Names[%d] = %q, want %q", i, all[i], ty.Name)
		}
		if ty.Swept {
			swept = append(swept, ty.Name)
		}
	}
	if got := objecttype.SweptNames(); !slices.Equal(got, swept) || len(got) == 0 {
		t.Errorf("SweptNames %v, want %v", got, swept)
	}
	if i, j := slices.Index(all, "contact"), slices.Index(all, "order"); i < 0 || j < 0 || i > j {
		t.Errorf("contacts come before the orders that name them: %v", all)
	}
}

// ByName and OfTable find a type by its name, its table or a part's table, and say so when none
// owns it.
func TestLookups(t *testing.T) {
	t.Parallel()
	c, ok := objecttype.ByName("contact")
	if !ok || c.Table != "contacts" {
		t.Errorf("ByName(contact) = %+v, %v", c, ok)
	}
	if ty, ok := objecttype.ByName("contacts"); ok {
		t.Errorf("ByName takes a type's name, not its table: %+v", ty)
	}
	if name, col, ok := objecttype.OfTable("contacts"); !ok || name != "contact" || col != "id" {
		t.Errorf("OfTable(contacts) = %q %q %v", name, col, ok)
	}
	for _, ty := range objecttype.All {
		for _, p := range ty.Parts {
			if name, col, ok := objecttype.OfTable(p.Table); !ok || name != ty.Name || col != p.IDColumn {
				t.Errorf("OfTable(%s) = %q %q %v, want %s %s", p.Table, name, col, ok, ty.Name, p.IDColumn)
			}
		}
	}
	if name, col, ok := objecttype.OfTable("nobody"); ok || name != "" || col != "" {
		t.Errorf("OfTable(nobody) = %q %q %v", name, col, ok)
	}
	if got := objecttype.OfEvent("contact.add"); got != "contact" {
		t.Errorf("OfEvent(contact.add) = %q", got)
	}
	if got := objecttype.OfEvent("invoice.add"); got != "" {
		t.Errorf("an event keapsync ignores: %q", got)
	}
}
