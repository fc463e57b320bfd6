package push

import (
	"encoding/binary"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
)

// pgoutput message builders (protocol version 1 layouts).
func relationMsg(id uint32, ns, name string, cols ...string) []byte {
	b := append([]byte{'R'}, binary.BigEndian.AppendUint32(nil, id)...)
	b = append(append(b, ns...), 0)
	b = append(append(b, name...), 0)
	b = append(b, 'd')
	b = binary.BigEndian.AppendUint16(b, uint16(len(cols)))
	for _, c := range cols {
		b = append(b, 0)
		b = append(append(b, c...), 0)
		b = binary.BigEndian.AppendUint32(b, 25)
		b = binary.BigEndian.AppendUint32(b, 0xffffffff)
	}
	return b
}

// tuple encodes values; nil is SQL null.
func tuple(vals ...*string) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(len(vals)))
	for _, v := range vals {
		if v == nil {
			b = append(b, 'n')
			continue
		}
		b = append(b, 't')
		b = binary.BigEndian.AppendUint32(b, uint32(len(*v)))
		b = append(b, *v...)
	}
	return b
}

func s(v string) *string { return &v }

func rowMsg(kind byte, rel uint32, parts ...[]byte) []byte {
	b := append([]byte{kind}, binary.BigEndian.AppendUint32(nil, rel)...)
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

const acct = "11111111-1111-4111-8111-111111111111"

func TestDecoder(t *testing.T) {
	t.Parallel()
	d := newDecoder()
	for _, m := range [][]byte{
		relationMsg(1, "keap", "contacts", "id", "account_id", "given_name", "sync_origin"),
		relationMsg(2, "keap", "contact_tags", "account_id", "contact_id", "tag_id", "date_applied", "sync_origin"),
		relationMsg(3, "public", "contacts", "id", "account_id"),
		// A keap table without the column that names its record (a table the registry does not
		// know, or one altered by hand) is not taken for the record type.
		relationMsg(4, "keap", "contacts", "account_id", "given_name", "sync_origin"),
	} {
		msg, err := pglogrepl.ParseV2(m, false)
		if err != nil {
			t.Fatal(err)
		}
		d.relation(msg.(*pglogrepl.RelationMessageV2))
	}
	for _, tc := range []struct {
		name string
		msg  []byte
		want []change
	}{
		{"local insert", rowMsg('I', 1, []byte{'N'}, tuple(s("7"), s(acct), s("Ada"), s("local"))),
			[]change{{acct, "contact", 7}}},
		{"Keap's insert is no echo", rowMsg('I', 1, []byte{'N'}, tuple(s("7"), s(acct), s("Ada"), s("keap"))), nil},
		{"local update", rowMsg('U', 1, []byte{'N'}, tuple(s("8"), s(acct), nil, s("local"))),
			[]change{{acct, "contact", 8}}},
		{"Keap's update is no echo", rowMsg('U', 1, []byte{'N'}, tuple(s("8"), s(acct), nil, s("keap"))), nil},
		{"delete: key only, account found later", rowMsg('D', 1, []byte{'K'}, tuple(s("9"), nil, nil, nil)),
			[]change{{"", "contact", 9}}},
		{"a tag on a contact is the contact", rowMsg('I', 2, []byte{'N'}, tuple(s(acct), s("10"), s("3"), s("2026-01-01"), s("local"))),
			[]change{{acct, "contact", 10}}},
		{"a tag moved between contacts changes both", rowMsg('U', 2, []byte{'K'}, tuple(nil, s("10"), s("3"), nil, nil),
			[]byte{'N'}, tuple(s(acct), s("11"), s("3"), s("2026-01-01"), s("local"))),
			[]change{{acct, "contact", 11}, {"", "contact", 10}}},
		{"other schemas are ignored", rowMsg('I', 3, []byte{'N'}, tuple(s("1"), s(acct))), nil},
		{"deletes in other schemas too", rowMsg('D', 3, []byte{'K'}, tuple(s("1"), nil)), nil},
		{"a table without its record's id is ignored", rowMsg('I', 4, []byte{'N'}, tuple(s(acct), s("Ada"), s("local"))), nil},
		{"a message that is not a row", []byte("O" + "\x00\x00\x00\x00\x00\x00\x00\x01" + "origin\x00"), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg, err := pglogrepl.ParseV2(tc.msg, false)
			if err != nil {
				t.Fatal(err)
			}
			got, err := d.row(msg)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
	t.Run("row before its relation", func(t *testing.T) {
		msg, err := pglogrepl.ParseV2(rowMsg('I', 99, []byte{'N'}, tuple(s("1"))), false)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.row(msg); err == nil {
			t.Error("no error")
		}
	})
	t.Run("a row id that is not a number is an error", func(t *testing.T) {
		msg, _ := pglogrepl.ParseV2(rowMsg('D', 1, []byte{'K'}, tuple(s("seven"), nil, nil, nil)), false)
		if _, err := d.row(msg); err == nil {
			t.Error("no error")
		}
	})
	t.Run("update without an account is an error", func(t *testing.T) {
		msg, _ := pglogrepl.ParseV2(rowMsg('U', 1, []byte{'N'}, tuple(s("8"), nil, nil, s("local"))), false)
		if _, err := d.row(msg); err == nil {
			t.Error("no error")
		}
	})
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	c := DefaultConfig()
	for attempts, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 4: 8 * time.Second, 30: 5 * time.Minute} {
		if got := c.backoff(attempts); got != want {
			t.Errorf("backoff(%d) = %v, want %v", attempts, got, want)
		}
	}
}
