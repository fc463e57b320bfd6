package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keapsync/keapsync/sidecar/devtools/pgtest"
	"github.com/keapsync/keapsync/sidecar/keap"
)

// hostileTypes are the object types a hostile record is tried as, with the table it lands in and
// the fields a hostile value is put into (the last is its version clock's field, if any).
var hostileTypes = []struct {
	objectType, table string
	fields            []string
}{
	{"contact", "keap.contacts", []string{"given_name", "job_title", "custom_fields", "last_updated"}},
	{"tag", "keap.tags", []string{"name", "description"}},
	{"order", "keap.orders", []string{"title", "total", "modification_date"}},
}

// Injection modes: how the fuzzed bytes become part of a record.
const (
	asString  = iota // the bytes inside a JSON string, raw (invalid UTF-8 stays invalid; NUL as \u0000)
	asJSON           // the bytes as a JSON value verbatim (numbers, escapes, objects), when they are JSON
	asKey            // the bytes as a member name
	asNesting        // the bytes as a string nested depth arrays deep
	modes
)

var hostileSeq atomic.Int64

// FuzzHostileRecordBlocksOnlyItself feeds Keap objects holding what PostgreSQL refuses or
// what strains a decoder (NUL, invalid UTF-8, lone surrogates, huge strings, deep nesting,
// numbers beyond float64 or numeric) through decode -> apply -> dead letter against a real
// database, beside 8 valid neighbours, by both apply paths (the inbox worker's record by record
// and the sweep's set-based page). Nothing may panic or return an error, every neighbour must
// be applied, and the hostile record must be applied or parked; when it had to be rewritten its
// dead letter keeps the original, escaped.
func FuzzHostileRecordBlocksOnlyItself(f *testing.F) {
	huge := strings.Repeat("x", 4<<20)
	for _, s := range []struct {
		kind, mode, field uint8
		value             string
		depth             uint16
	}{
		{0, asString, 0, "Ann\x00Lee", 0},
		{0, asString, 1, "\xff\xfe not UTF-8 \xc3", 0},
		{0, asJSON, 0, `"\u0000"`, 0},
		{0, asJSON, 0, `"\ud800 lone \udc00"`, 0},
		{0, asJSON, 0, `"\ud83d\ude00 a pair is fine"`, 0},
		{0, asJSON, 2, `[{"id": 1, "content": "\u0000"}]`, 0},
		{0, asJSON, 2, `1e999999`, 0},
		{0, asJSON, 2, `-0.1e-99999`, 0},
		{0, asJSON, 2, "1" + strings.Repeat("0", 140000), 0},
		{0, asJSON, 3, `1e400`, 0},
		{0, asJSON, 3, `"not a time"`, 0},
		{0, asKey, 0, "key\x00with NUL", 0},
		{0, asKey, 0, "\xfe", 0},
		{0, asString, 0, huge, 0},
		{0, asNesting, 2, "deep", 5000},
		{0, asNesting, 2, "too deep for Go", 10001},
		{1, asString, 0, "VIP\x00", 0},
		{1, asString, 1, "\x80", 0},
		{2, asJSON, 1, `1e308`, 0},
		{2, asJSON, 1, `1e400`, 0},
		{2, asString, 1, "NaN", 0},
		{2, asString, 0, "Order \x00 7", 0},
	} {
		f.Add(s.kind, s.mode, s.field, []byte(s.value), s.depth)
	}
	db := pgtest.Pool(f)
	var account string
	if err := db.QueryRow(context.Background(), `insert into keapsync.accounts (name, keap_tenant) values ('Fuzz', 'fz') returning id`).Scan(&account); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, kind, mode, field uint8, value []byte, depth uint16) {
		ht := hostileTypes[int(kind)%len(hostileTypes)]
		name := ht.fields[int(field)%len(ht.fields)]
		raw := hostileRecord(mode%modes, name, value, int(depth)%12000)
		for _, path := range []string{"worker", "sweep"} {
			base := hostileSeq.Add(1) * 100
			page := make([]record, 0, 9)
			for i := range int64(9) {
				r := validRecord(ht.objectType, base+i)
				if i == 4 {
					r = rawObject(raw, base+i)
				}
				page = append(page, decoded(ht.objectType, base+i, r))
			}
			ctx := context.Background()
			switch path {
			case "worker":
				applyAsWorker(t, ctx, db, account, ht.objectType, page)
			case "sweep":
				s := &Sweeper{DB: db, Log: testLog(t)}
				if err := s.applyPage(ctx, account, ht.objectType, page, nil); err != nil {
					t.Fatalf("sweep page with one hostile %s: %v", ht.objectType, err)
				}
			}
			checkHostilePage(t, db, account, ht.table, ht.objectType, page, path)
		}
	})
}

// hostileRecord builds the members of an object with value put in field name as mode says.
func hostileRecord(mode uint8, name string, value []byte, depth int) []byte {
	var b bytes.Buffer
	switch mode {
	case asString:
		fmt.Fprintf(&b, `"%s": %s`, name, rawString(value))
	case asJSON:
		if !json.Valid(value) {
			return hostileRecord(asString, name, value, depth)
		}
		fmt.Fprintf(&b, `"%s": %s`, name, value)
	case asKey:
		fmt.Fprintf(&b, `%s: 1`, rawString(value))
	case asNesting:
		fmt.Fprintf(&b, `"%s": %s%s%s`, name, strings.Repeat("[", depth), rawString(value), strings.Repeat("]", depth))
	}
	return b.Bytes()
}

// rawString quotes bytes as a JSON string the way a careless server would: only what JSON
// forbids is escaped, and bytes that are not UTF-8 are sent as they are.
func rawString(v []byte) []byte {
	out := []byte{'"'}
	for _, c := range v {
		switch {
		case c == '"' || c == '\\':
			out = append(out, '\\', c)
		case c < 0x20:
			out = append(out, fmt.Sprintf(`\u%04x`, c)...)
		default:
			out = append(out, c)
		}
	}
	return append(out, '"')
}

// rawObject is a record of members (the hostile ones) with an id.
func rawObject(members []byte, id int64) []byte {
	return []byte(`{"id": ` + strconv.FormatInt(id, 10) + `, ` + string(members) + `}`)
}

func validRecord(objectType string, id int64) []byte {
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC).Format(time.RFC3339)
	switch objectType {
	case "contact":
		return []byte(fmt.Sprintf(`{"id": %d, "given_name": "Valid %d", "last_updated": %q,
		  "email_addresses": [{"email": "v%d@example.com", "field": "EMAIL1"}]}`, id, id, at, id))
	case "tag":
		return []byte(fmt.Sprintf(`{"id": %d, "name": "Tag %d"}`, id, id))
	default:
		return []byte(fmt.Sprintf(`{"id": %d, "title": "Order %d", "total": 12.5, "modification_date": %q}`, id, id, at))
	}
}

// decoded runs raw through the Keap client's decoder for the type: an object that does not
// decode becomes a record to park under the id it was fetched by (keap.ResponseError on a GET,
// keap.ItemError in a listing), one that does carries Raw.
func decoded(objectType string, id int64, raw []byte) record {
	var err error
	var rec record
	switch objectType {
	case "contact":
		var c keap.Contact
		if err = json.Unmarshal(raw, &c); err == nil {
			rec = contactRecord(c)
		}
	case "tag":
		var g keap.Tag
		if err = json.Unmarshal(raw, &g); err == nil {
			rec = record{id: int64(g.ID), raw: g.Raw}
		}
	default:
		var o keap.Order
		if err = json.Unmarshal(raw, &o); err == nil {
			rec = record{id: int64(o.ID), modified: o.ModificationDate.Time, raw: o.Raw}
		}
	}
	if err != nil {
		return record{id: id, raw: raw, bad: &keap.ItemError{ID: keap.ID(id), Raw: raw, Err: err}}
	}
	return rec
}

// applyAsWorker applies a group as the inbox worker does: record by record in one transaction.
func applyAsWorker(t *testing.T, ctx context.Context, db *pgxpool.Pool, account, objectType string, page []record) {
	t.Helper()
	w := &Worker{DB: db, Log: testLog(t)}
	err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		return w.applyEach(ctx, tx, account, objectType, page)
	})
	if err != nil {
		t.Fatalf("worker group with one hostile %s: %v", objectType, err)
	}
}

func checkHostilePage(t *testing.T, db *pgxpool.Pool, account, table, objectType string, page []record, path string) {
	t.Helper()
	ctx := context.Background()
	count := func(sql string, args ...any) int {
		t.Helper()
		var n int
		if err := db.QueryRow(ctx, sql, args...).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for i, r := range page {
		applied := count(`select count(*) from `+table+` where account_id = $1 and keap_id = $2`, account, r.id)
		letters := count(`select count(*) from keapsync.dead_letters where account_id = $1 and object_type = $2 and keap_id = $3
		   and status = 'parked'`, account, objectType, r.id)
		if i != 4 {
			if applied != 1 || letters != 0 {
				t.Fatalf("%s: valid neighbour %s %d: applied %d, dead letters %d", path, objectType, r.id, applied, letters)
			}
			continue
		}
		if applied == 0 && letters == 0 {
			t.Fatalf("%s: hostile %s %d neither applied nor parked", path, objectType, r.id)
		}
		if letters > 1 {
			t.Fatalf("%s: hostile %s %d has %d open dead letters, want one", path, objectType, r.id, letters)
		}
		// What PostgreSQL cannot store is made storable in Go: its refusal of an encoding must
		// never be the reason a record was parked.
		var cause string
		_ = db.QueryRow(ctx, `select coalesce(max(error), '') from keapsync.dead_letters where account_id = $1 and object_type = $2
		    and keap_id = $3`, account, objectType, r.id).Scan(&cause)
		for _, refusal := range []string{"(SQLSTATE 22P05)", "(SQLSTATE 22021)", "value overflows numeric format"} {
			if strings.Contains(cause, refusal) {
				t.Fatalf("%s: hostile %s %d reached PostgreSQL unstorable: %s", path, objectType, r.id, cause)
			}
		}
		_, alt, err := storable(r.raw)
		if r.bad == nil && err == nil && !alt.any() {
			continue // stored as it came; a letter, if any, holds it as is
		}
		var original string
		if err := db.QueryRow(ctx, `select coalesce(payload ->> 'original', '') from keapsync.dead_letters
		    where account_id = $1 and object_type = $2 and keap_id = $3`, account, objectType, r.id).Scan(&original); err != nil {
			t.Fatalf("%s: hostile %s %d (%v, %s) has no dead letter: %v", path, objectType, r.id, r.bad, alt, err)
		}
		if r.bad == nil && original != escapeOriginal(r.raw) {
			t.Fatalf("%s: the letter of %s %d does not keep the original escaped", path, objectType, r.id)
		}
		if !utf8.ValidString(original) {
			t.Fatalf("%s: escaped original is not UTF-8", path)
		}
	}
}

// testLog sends a component's log to the test's log.
func testLog(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	n := len(p)
	if len(p) > 300 {
		p = append(p[:300:300], "...\n"...)
	}
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return n, nil
}

// A letter is written even when PostgreSQL refuses its payload: it then keeps only the escaped
// original, a plain string, and the error text is made storable too.
func TestParkAlwaysWrites(t *testing.T) {
	t.Parallel()
	db := pgtest.Pool(t)
	ctx := context.Background()
	var account string
	if err := db.QueryRow(ctx, `insert into keapsync.accounts (name, keap_tenant) values ('Park', 'pk') returning id`).Scan(&account); err != nil {
		t.Fatal(err)
	}
	raw := []byte("{\"id\": 7, \"name\": \"a\\u0000\xff\"}")
	err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		return park(ctx, tx, deadLetter{account: account, objectType: "tag", keapID: 7, raw: raw,
			clean: []byte(`{"name": "\u0000"}`), alt: alterations{nul: 1}, cause: "refused: \x00\xfe"})
	})
	if err != nil {
		t.Fatal(err)
	}
	var original, unstorable, cause string
	if err := db.QueryRow(ctx, `select payload ->> 'original', payload ->> 'unstorable', error from keapsync.dead_letters
	    where account_id = $1 and keap_id = 7`, account).Scan(&original, &unstorable, &cause); err != nil {
		t.Fatal(err)
	}
	if original != `{"id": 7, "name": "a\u0000\xff"}` || unstorable == "" || cause != "refused: \uFFFD" {
		t.Fatalf("letter: original %q, unstorable %q, error %q", original, unstorable, cause)
	}
}
