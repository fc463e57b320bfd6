package main

import (
	"strings"
	"testing"
)

// Per-object hooked-change rows are judged against their goal at 1000 changes or more, and
// shown unjudged from fewer (one list call then counts against fewer changes).
func TestHookedChangeRows(t *testing.T) {
	in := `pkg: github.com/keapsync/keapsync/sidecar/ingest
BenchmarkHookedChangesAPICalls/company/changes=1000-2   1  2291852395 ns/op  1.000 calls/1000-changes(goal<=5)
BenchmarkHookedChangesAPICalls/tag/changes=1000-2       1  2291852395 ns/op  1000 calls/1000-changes(goal<=5)
BenchmarkHookedChangesAPICalls/product/changes=100-2    1  1087827658 ns/op  10.00 calls/1000-changes(goal<=5)
`
	rows, _, err := parse(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []row{
		{"sidecar/ingest HookedChangesAPICalls/company/changes=1000-2", "calls/1000-changes", "1.000", "<= 5", "met"},
		{"sidecar/ingest HookedChangesAPICalls/tag/changes=1000-2", "calls/1000-changes", "1000", "<= 5", "missed"},
		{"sidecar/ingest HookedChangesAPICalls/product/changes=100-2", "calls/1000-changes", "10.00", "<= 5", "not judged: fewer than 1000 changes"},
	}
	if len(rows) != len(want) {
		t.Fatalf("rows: %+v", rows)
	}
	for i := range want {
		if rows[i] != want[i] {
			t.Errorf("row %d = %+v, want %+v", i, rows[i], want[i])
		}
	}
}
