package migrate

import (
	"reflect"
	"strings"
	"testing"
)

func TestSplit(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want []string
	}{
		{"plain", "select 1; select 2;", []string{"select 1", "select 2"}},
		{"no trailing semicolon", "select 1;\n\nselect 2\n", []string{"select 1", "select 2"}},
		{"leading comment kept", "-- why\ncreate table t (a int);", []string{"-- why\ncreate table t (a int)"}},
		{"semicolon in string", "select 'a;b'; select 'it''s;'", []string{"select 'a;b'", "select 'it''s;'"}},
		{"escape string", `select E'\';'; select 1`, []string{`select E'\';'`, "select 1"}},
		{"quoted identifier", `select 1 as "x;y"; select 2`, []string{`select 1 as "x;y"`, "select 2"}},
		{"line comment", "select 1 -- a;b\n; select 2", []string{"select 1 -- a;b", "select 2"}},
		{"block comment nested", "select /* a; /* b; */ c; */ 1; select 2", []string{"select /* a; /* b; */ c; */ 1", "select 2"}},
		{"dollar body", "create function f() returns int language sql as $$ select 1; $$; select 2",
			[]string{"create function f() returns int language sql as $$ select 1; $$", "select 2"}},
		{"tagged dollar body", "do $x$ begin perform 1; $y$; end $x$; select 2",
			[]string{"do $x$ begin perform 1; $y$; end $x$", "select 2"}},
		{"positional parameter", "select $1; select 2", []string{"select $1", "select 2"}},
		{"empty statements dropped", ";;  ;\n", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Split(tc.in); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Split(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// FuzzSplit checks that splitting never panics, never loses text other than white space and the
// separating semicolons, and yields trimmed, non-empty statements.
func FuzzSplit(f *testing.F) {
	for _, s := range []string{"select 1;", "do $$ ; $$;", "'unterminated", "/* open", "$tag$ x", "E'\\';'"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		stmts := Split(in)
		strip := func(s string) string {
			return strings.Map(func(r rune) rune {
				if r == ';' || r == ' ' || r == '\n' || r == '\t' || r == '\r' || r == '\v' || r == '\f' || r == 0x85 || r == 0xA0 {
					return -1
				}
				return r
			}, s)
		}
		if strip(strings.Join(stmts, "")) != strip(in) {
			t.Errorf("Split(%q) = %q loses text", in, stmts)
		}
		for _, s := range stmts {
			if s == "" || s != strings.TrimSpace(s) {
				t.Errorf("Split(%q) yields untrimmed or empty %q", in, s)
			}
		}
	})
}
