package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/keapsync/keapsync/sidecar/objecttype"
)

// MaxObjectKeys is Keap's batch limit: one delivery names at most 1000 objects.
const MaxObjectKeys = 1000

// Delivery is a REST Hook delivery, reduced to what keapsync trusts from it: which ids changed.
type Delivery struct {
	EventKey   string
	ObjectType string // keapsync's object type the event is about, "" if keapsync ignores it
	IDs        []int64
	// Keap does not document whether contactGroup.applied/removed name the contact or the tag
	// (FACTS.md §6). Each object key is read by its apiUrl (…/contacts/{id}[/tags] or
	// …/tags/{id}) or the delivery's object_type where present; IDs then holds contact ids,
	// TagIDs tags whose contacts are re-read, and EitherIDs ids nothing identified, checked both
	// ways (as a contact and as a tag).
	TagIDs, EitherIDs []int64
}

// Empty reports a delivery that names nothing keapsync syncs.
func (d Delivery) Empty() bool {
	return d.ObjectType == "" || len(d.IDs)+len(d.TagIDs)+len(d.EitherIDs) == 0
}

// isTagApplication reports the events that say a tag was applied to or removed from contacts.
func isTagApplication(eventKey string) bool {
	return eventKey == "contactGroup.applied" || eventKey == "contactGroup.removed"
}

var (
	contactURLPattern = regexp.MustCompile(`/contacts/(\d+)(/tags)?/?$`)
	tagURLPattern     = regexp.MustCompile(`/tags/(\d+)/?$`)
)

// tagApplicationSide says what an object key of a tag application names: "contact", "tag", or
// "" when neither its apiUrl nor the delivery's object_type tells.
func tagApplicationSide(objectType, apiURL string) string {
	switch {
	case contactURLPattern.MatchString(apiURL):
		return "contact"
	case tagURLPattern.MatchString(apiURL):
		return "tag"
	case strings.EqualFold(objectType, "contact"):
		return "contact"
	case strings.EqualFold(objectType, "tag"):
		return "tag"
	}
	return "" // "contactGroup" is the type of the event, not of the id
}

var eventKeyPattern = regexp.MustCompile(`^[a-zA-Z]+(\.[a-zA-Z_]+)+$`)

// objectTypeOf maps Keap event keys to the object keapsync refetches (the registry says which).
// contactGroup.applied and .removed change contacts' tag ids, so contacts are refetched (which
// ones: see Delivery). invoice.payment.* change the invoice, which v1 serves as the order of the
// same id; which id the delivery carries is undocumented, so the worker only refetches it.
func objectTypeOf(eventKey string) string { return objecttype.OfEvent(eventKey) }

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
		ObjectType string `json:"object_type"`
		ObjectKeys []struct {
			ID     json.RawMessage `json:"id"`
			APIURL string          `json:"apiUrl"`
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
	seen := make(map[[2]int64]bool, len(raw.ObjectKeys))
	for i, k := range raw.ObjectKeys {
		id, err := parseID(k.ID)
		if err != nil {
			return Delivery{}, fmt.Errorf("object_keys[%d].id: %w", i, err)
		}
		list, side := &d.IDs, int64(0)
		if isTagApplication(d.EventKey) {
			switch tagApplicationSide(raw.ObjectType, k.APIURL) {
			case "tag":
				list, side = &d.TagIDs, 1
			case "":
				list, side = &d.EitherIDs, 2
			}
		}
		if !seen[[2]int64{side, id}] {
			seen[[2]int64{side, id}] = true
			*list = append(*list, id)
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
