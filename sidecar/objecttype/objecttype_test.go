package objecttype_test

import (
	"context"
	"maps"
	"slices"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/keapsync/keapsync/sidecar/devtools/pgtest"
	"github.com/keapsync/keapsync/sidecar/objecttype"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// The Go registry and keapsync.object_types name the same types with the same tables, and the
// publication the migrations create carries exactly the registry's tables.
func TestRegistryMatchesTheDatabase(t *testing.T) {
	ctx := context.Background()
	db := pgtest.Pool(t)
	rows, _ := db.Query(ctx, `select object_type, table_name from keapsync.object_types`)
	inSQL := map[string]string{}
	var name, table string
	if _, err := pgx.ForEachRow(rows, []any{&name, &table}, func() error { inSQL[name] = table; return nil }); err != nil {
		t.Fatal(err)
	}
	inGo := map[string]string{}
	for _, ty := range objecttype.All {
		inGo[ty.Name] = ty.Table
	}
	if !maps.Equal(inGo, inSQL) {
		t.Errorf("objecttype.All %v != keapsync.object_types %v", inGo, inSQL)
	}

	rows, _ = db.Query(ctx, `select tablename::text from pg_publication_tables where pubname = 'keapsync_push' and schemaname = 'keap'`)
	published, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	want := objecttype.Tables()
	slices.Sort(published)
	slices.Sort(want)
	if !slices.Equal(published, want) {
		t.Errorf("publication keapsync_push carries %v, registry tables are %v", published, want)
	}
	// keap_body sends ids as the type's API takes them: numbers to v1, strings to v2.
	for _, ty := range objecttype.All {
		if ty.V2 == nil {
			continue
		}
		var numbers bool
		if err := db.QueryRow(ctx, `select number_ids from keapsync.object_types where object_type = $1`, ty.Name).Scan(&numbers); err != nil {
			t.Fatal(err)
		}
		if numbers != ty.V2.V1() {
			t.Errorf("%s: object_types.number_ids is %v for %s", ty.Name, numbers, ty.V2.Path)
		}
	}
	// A type keeps custom fields (map_column, its keap.<table>_custom view) exactly when the
	// registry names its model, and a v2 type reading them asks for them.
	for _, ty := range objecttype.All {
		var custom bool
		if err := db.QueryRow(ctx, `select map_column is not null from keapsync.object_types where object_type = $1`, ty.Name).Scan(&custom); err != nil {
			t.Fatal(err)
		}
		if custom != (ty.Model != "") {
			t.Errorf("%s: object_types.map_column set is %v, registry model %q", ty.Name, custom, ty.Model)
		}
		if ty.Model != "" && ty.V2 != nil && ty.V2.V1() != (ty.CustomFields != nil) {
			t.Errorf("%s: a v1 type reads its custom fields from v2 (CustomFields), a v2 type with its records", ty.Name)
		}
		if ty.CustomFields != nil && ty.Model == "" {
			t.Errorf("%s: reads custom fields from v2 without their model", ty.Name)
		}
		if ty.Model != "" && ty.V2 != nil && !ty.V2.V1() && !slices.Contains(ty.V2.Fields, "custom_fields") {
			t.Errorf("%s: reads custom fields without asking for them (fields %v)", ty.Name, ty.V2.Fields)
		}
	}
	for _, ty := range objecttype.All {
		for _, p := range ty.Parts {
			var ok bool
			err := db.QueryRow(ctx, `select exists (select 1 from information_schema.columns
				where table_schema = 'keap' and table_name = $1 and column_name = $2)`, p.Table, p.IDColumn).Scan(&ok)
			if err != nil || !ok {
				t.Errorf("keap.%s.%s: %v, %v", p.Table, p.IDColumn, ok, err)
			}
		}
	}
}

func TestOfEvent(t *testing.T) {
	for key, want := range map[string]string{
		"contact.edit": "contact", "contactGroup.applied": "contact", "contactGroup.edit": "tag",
		"invoice.payment.add": "order", "subscription.delete": "subscription", "task.add": "task", "note.add": "note", "leadsource.add": "", "opportunity.stage_move": "opportunity",
		"contact.redact": "contact",
	} {
		if got := objecttype.OfEvent(key); got != want {
			t.Errorf("OfEvent(%q) = %q, want %q", key, got, want)
		}
	}
	seen := map[string]bool{}
	for _, k := range objecttype.EventKeys() {
		if seen[k] {
			t.Errorf("event %s listed twice", k)
		}
		seen[k] = true
	}
}
