package objecttype_test

import (
	"context"
	"encoding/json"
	"maps"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keapsync/keapsync/sidecar/devtools/pgtest"
	"github.com/keapsync/keapsync/sidecar/keap"
	"github.com/keapsync/keapsync/sidecar/objecttype"
	"github.com/keapsync/keapsync/sidecar/sandbox/keapspec"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// The Go registry and keapsync.object_types name the same types with the same tables, and the
// publication the migrations create carries exactly the registry's tables; a V2 type's row
// holds what reading and writing it without code needs.
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
	// A type read and written through its V2 resource needs no code (docs/add-an-object-type.md):
	// its object_types row says where each column sits in Keap's object (keap_paths), where Keap's
	// clock is (modified_path, which keap.Object.Modified must read) and what Keap's API lets
	// keapsync send (push_ops, as Keap's documents have it). Other types are mapped by code
	// (keapsync.keap_columns_of), with no keap_paths.
	re := regexp.MustCompile(`\{[^}]+\}`)
	for _, ty := range objecttype.All {
		var paths, writePaths map[string][]string
		var modified, merge, keapCols, ops []string
		if err := db.QueryRow(ctx, `select keap_paths, keap_write_paths, modified_path, merge_columns, keap_columns, push_ops
			from keapsync.object_types where object_type = $1`, ty.Name).Scan(&paths, &writePaths, &modified, &merge, &keapCols, &ops); err != nil {
			t.Fatal(err)
		}
		if ty.V2 == nil {
			if paths != nil || modified != nil {
				t.Errorf("%s: read by code, yet object_types has keap_paths %v, modified_path %v", ty.Name, paths, modified)
			}
			continue
		}
		rows, _ := db.Query(ctx, `select column_name::text from information_schema.columns where table_schema = 'keap' and table_name = $1`, ty.Table)
		columns, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		synced := slices.Concat(merge, keapCols)
		if len(paths) == 0 {
			t.Errorf("%s: a V2 type without keap_paths", ty.Name)
		}
		for _, c := range synced {
			if _, ok := paths[c]; !ok {
				t.Errorf("%s: column %s is synced but has no keap_path", ty.Name, c)
			}
		}
		for c := range paths {
			if !slices.Contains(synced, c) || !slices.Contains(columns, c) {
				t.Errorf("%s: keap_paths names %s, not a synced column of keap.%s", ty.Name, c, ty.Table)
			}
		}
		for c := range writePaths {
			if _, ok := paths[c]; !ok {
				t.Errorf("%s: keap_write_paths names %s, which keap_paths does not", ty.Name, c)
			}
		}
		if !slices.ContainsFunc(slices.Collect(maps.Values(paths)), func(p []string) bool { return slices.Equal(p, modified) }) {
			t.Errorf("%s: modified_path %v is none of its columns' keap_paths", ty.Name, modified)
		}
		// keap.Object.Modified reads the clock where modified_path says it is.
		at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		var raw any = at.Format(time.RFC3339)
		for i := len(modified) - 1; i >= 0; i-- {
			raw = map[string]any{modified[i]: raw}
		}
		b, _ := json.Marshal(raw)
		var o keap.Object
		if err := json.Unmarshal(b, &o); err != nil || !o.Modified().Equal(at) {
			t.Errorf("%s: keap.Object.Modified reads %v from %s (%v); its clock is at %v", ty.Name, o.Modified(), b, err, modified)
		}
		// push_ops: exactly the writes Keap's documents have for the resource.
		spec, err := keapspec.V2()
		collection := "/rest" + ty.V2.Path
		if ty.V2.V1() {
			spec, err = keapspec.V1()
			collection = ty.V2.Path
		}
		if err != nil {
			t.Fatal(err)
		}
		var documented []string
		for _, path := range spec.Doc.Paths.InMatchingOrder() {
			item, p := spec.Doc.Paths.Find(path), re.ReplaceAllString(path, "{}")
			if p == collection && item.Post != nil {
				documented = append(documented, "create")
			}
			if p == collection+"/{}" && item.Patch != nil {
				documented = append(documented, "update")
			}
			if p == collection+"/{}" && item.Delete != nil {
				documented = append(documented, "delete")
			}
		}
		slices.Sort(documented)
		slices.Sort(ops)
		if !slices.Equal(ops, documented) {
			t.Errorf("%s: object_types.push_ops %v, Keap documents %v for %s", ty.Name, ops, documented, ty.V2.Path)
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
