package dashboard

import (
	"context"
	"encoding/csv"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestDefuseFormula(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"":                       "",
		"Ann":                    "Ann",
		"=1+1":                   "'=1+1",
		"+1":                     "'+1",
		"@SUM(A1)":               "'@SUM(A1)",
		"\tx":                    "'\tx",
		"\rx":                    "'\rx",
		"-2+3+cmd|' /C calc'!A0": "'-2+3+cmd|' /C calc'!A0",
		"-":                      "'-",
		"-x":                     "'-x",
		"-12":                    "-12",
		"-12.50":                 "-12.50",
		"-1e5":                   "-1e5",
		"-0x1p-2":                "'-0x1p-2",
		"-12 ":                   "'-12 ",
		"2026-01-01":             "2026-01-01",
	} {
		if got := defuseFormula(in); got != want {
			t.Errorf("defuseFormula(%q) = %q, want %q", in, got, want)
		}
	}
}

// A contact named like a formula that starts with a minus leaves the export defused.
func TestCSVExportDefusesLeadingMinus(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if _, err := e.db.Exec(context.Background(), `select keapsync.apply_keap_records($1, 'contact',
	  '[{"id": 99001, "given_name": "-2+3+cmd|'' /C calc''!A0", "family_name": "-7",
	     "last_updated": "2026-06-01T09:00:00.000Z"}]')`, accountA); err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "/data/contacts.csv", nil)
	tok, _, _ := e.srv.mint.access(adminA, "")
	req.AddCookie(&http.Cookie{Name: cookieAccess, Value: tok})
	rec := httptest.NewRecorder()
	e.srv.Handler().ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Fatalf("export: %d %s", rec.Code, rec.Body.String())
	}
	records, err := csv.NewReader(strings.NewReader(rec.Body.String())).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range records {
		for i, c := range r {
			if strings.Contains(c, "cmd|") {
				found = true
				if c != "'-2+3+cmd|' /C calc'!A0" {
					t.Fatalf("formula cell exported as %q", c)
				}
				if r[i+1] != "-7" {
					t.Fatalf("a negative number became %q", r[i+1])
				}
			}
		}
	}
	if !found {
		t.Fatalf("the contact is not in the export:\n%.500s", rec.Body.String())
	}
}
