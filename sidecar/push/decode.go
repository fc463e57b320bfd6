package push

import (
	"fmt"
	"strconv"

	"github.com/jackc/pglogrepl"

	"github.com/keapsync/keapsync/sidecar/objecttype"
)

// change says "record localID of objectType changed". account is empty when the stream did not
// carry it (a delete's old tuple holds only the primary key); the enqueue finds it in sync_state.
type change struct {
	account    string
	objectType string
	localID    int64
}

// relation is what the decoder needs of a published table: where the record's id, account and
// origin marker sit in its tuples.
type relation struct {
	name       string
	objectType string
	id         int // column index of the record's local id (contact_id for contact_tags)
	account    int // -1 when absent
	origin     int // -1 when absent
}

// decoder turns pgoutput row messages into changes. It keeps the relation cache pgoutput relies
// on: a Relation message precedes the first row of a table in each session and after DDL.
type decoder struct {
	relations map[uint32]*relation
}

func newDecoder() *decoder {
	return &decoder{relations: map[uint32]*relation{}}
}

// relation caches a Relation message. Tables that are not synced object types are remembered
// with an empty object type so their rows are ignored.
func (d *decoder) relation(m *pglogrepl.RelationMessageV2) {
	r := &relation{name: m.RelationName, id: -1, account: -1, origin: -1}
	idColumn := "id"
	if m.Namespace == "keap" {
		// A part's row (a tag on a contact) is a change of the record that owns it.
		r.objectType, idColumn, _ = objecttype.OfTable(m.RelationName)
	}
	for i, c := range m.Columns {
		switch c.Name {
		case idColumn:
			r.id = i
		case "account_id":
			r.account = i
		case "sync_origin":
			r.origin = i
		}
	}
	if r.id < 0 {
		r.objectType = ""
	}
	d.relations[m.RelationID] = r
}

// row returns the changes one row message stands for (none for Keap's own writes, for tables
// that are not synced, and for messages that are not rows).
func (d *decoder) row(msg pglogrepl.Message) ([]change, error) {
	switch m := msg.(type) {
	case *pglogrepl.InsertMessageV2:
		return d.tuple(m.RelationID, m.Tuple, nil)
	case *pglogrepl.UpdateMessageV2:
		// An old key is sent only when the primary key changed (a tag moved to another
		// contact): both records changed.
		return d.tuple(m.RelationID, m.NewTuple, m.OldTuple)
	case *pglogrepl.DeleteMessageV2:
		r, err := d.rel(m.RelationID)
		if err != nil || r.objectType == "" || m.OldTuple == nil {
			return nil, err
		}
		c, err := r.change(m.OldTuple, true)
		if err != nil {
			return nil, err
		}
		return []change{c}, nil
	}
	return nil, nil
}

func (d *decoder) rel(id uint32) (*relation, error) {
	r, ok := d.relations[id]
	if !ok {
		return nil, fmt.Errorf("push: row for relation %d before its Relation message", id)
	}
	return r, nil
}

func (d *decoder) tuple(relID uint32, newTuple, oldKey *pglogrepl.TupleData) ([]change, error) {
	r, err := d.rel(relID)
	if err != nil || r.objectType == "" || newTuple == nil {
		return nil, err
	}
	// The no-echo marker: a BEFORE trigger stamped the row with the writer's origin, so a row
	// written on behalf of Keap says so in the stream itself.
	if text(newTuple, r.origin) == "keap" {
		return nil, nil
	}
	c, err := r.change(newTuple, false)
	if err != nil {
		return nil, err
	}
	out := []change{c}
	if oldKey != nil {
		if o, err := r.change(oldKey, true); err == nil && o.localID != c.localID {
			out = append(out, o)
		}
	}
	return out, nil
}

// change reads the record's id and account from a tuple. A key-only tuple may lack the account.
func (r *relation) change(t *pglogrepl.TupleData, keyOnly bool) (change, error) {
	raw := text(t, r.id)
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil {
		return change{}, fmt.Errorf("push: keap.%s row id %q: %w", r.name, raw, err)
	}
	c := change{objectType: r.objectType, localID: id, account: text(t, r.account)}
	if c.account == "" && !keyOnly {
		return change{}, fmt.Errorf("push: keap.%s row %d has no account_id", r.name, id)
	}
	return c, nil
}

// text is column i of t as text, or "" when it is absent, null or unchanged-toast.
func text(t *pglogrepl.TupleData, i int) string {
	if i < 0 || i >= len(t.Columns) || t.Columns[i].DataType != pglogrepl.TupleDataTypeText {
		return ""
	}
	return string(t.Columns[i].Data)
}
