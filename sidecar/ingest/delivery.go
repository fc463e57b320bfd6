package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// MaxObjectKeys is Keap's batch limit: one delivery names at most 1000 objects.
const MaxObjectKeys = 1000

// Delivery is a REST Hook delivery, reduced to what keapsync trusts from it: which ids changed.
type Delivery struct {
	EventKey   string
	ObjectType string // keapsync's object type the event is about, "" if keapsync ignores it
	IDs        []int64
}

var eventKeyPattern = regexp.MustCompile(`^[a-zA-Z]+(\.[a-zA-Z_]+)+$`)

// objectTypeOf maps Keap event keys to the object keapsync refetches. contactGroup.applied and
// .removed name the contact (the sandbox documents this choice; Keap does not), so the contact is
// refetched with its tag ids.
func objectTypeOf(eventKey string) string {
	prefix, _, _ := strings.Cut(eventKey, ".")
	switch {
	case eventKey == "contactGroup.applied" || eventKey == "contactGroup.removed":
		return "contact"
	case prefix == "contact":
		return "contact"
	case prefix == "contactGroup":
		return "tag"
	case prefix == "order":
		return "order"
	case strings.HasPrefix(eventKey, "invoice.payment."):
		// A payment changes its invoice, which v1 serves as the order of the same id. Which id
		// the delivery carries is undocumented: the worker only refetches it, never deletes.
		return "order"
	case prefix == "subscription":
		return "subscription"
	}
	return ""
}

// IsDelete reports whether the event says the objects were deleted.
func (d Delivery) IsDelete() bool { return strings.HasSuffix(d.EventKey, ".delete") }

// NamesObject reports whether the event's ids are the objects themselves, so that Keap answering
// 404 for one means it is gone. invoice.payment.* ids may name something else (a payment).
func (d Delivery) NamesObject() bool { return !strings.HasPrefix(d.EventKey, "invoice.") }

// DecodeDelivery parses a delivery body liberally (ids as numbers or strings, unknown members,
// missing apiUrl) and strictly where it matters (a known shape, at most 1000 positive ids).
func DecodeDelivery(body []byte) (Delivery, error) {
	var raw struct {
		EventKey   string `json:"event_key"`
		ObjectKeys []struct {
			ID json.RawMessage `json:"id"`
		} `json:"object_keys"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&raw); err != nil {
		return Delivery{}, fmt.Errorf("delivery is not the JSON Keap sends: %w", err)
	}
	if dec.More() {
		return Delivery{}, errors.New("delivery has data after its JSON object")
	}
	if !eventKeyPattern.MatchString(raw.EventKey) {
		return Delivery{}, fmt.Errorf("delivery has no valid event_key (got %q)", clip(raw.EventKey))
	}
	if len(raw.ObjectKeys) > MaxObjectKeys {
		return Delivery{}, fmt.Errorf("delivery names %d objects; Keap sends at most %d", len(raw.ObjectKeys), MaxObjectKeys)
	}
	d := Delivery{EventKey: raw.EventKey, ObjectType: objectTypeOf(raw.EventKey), IDs: make([]int64, 0, len(raw.ObjectKeys))}
	seen := make(map[int64]bool, len(raw.ObjectKeys))
	for i, k := range raw.ObjectKeys {
		id, err := parseID(k.ID)
		if err != nil {
			return Delivery{}, fmt.Errorf("object_keys[%d].id: %w", i, err)
		}
		if !seen[id] {
			seen[id] = true
			d.IDs = append(d.IDs, id)
		}
	}
	return d, nil
}

// parseID accepts 123 and "123".
func parseID(raw json.RawMessage) (int64, error) {
	s := strings.TrimSpace(string(raw))
	if unq, err := strconv.Unquote(s); err == nil {
		s = unq
	}
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("not a positive integer id: %s", clip(string(raw)))
	}
	return id, nil
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:37] + "..."
	}
	return s
}
