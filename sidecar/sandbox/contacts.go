package sandbox

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"
)

// contact is one Keap contact. Writable properties are kept as decoded JSON so that what a
// client wrote is what it reads back, type for type.
type contact struct {
	id               int64
	created, updated time.Time
	f                map[string]any
	tags             map[int64]time.Time // tag id -> date applied
	listJSON         []byte              // default rendering, rebuilt on every write
}

// Properties served only when asked for with optional_properties (FACTS.md §4: lead_source_id,
// custom_fields, job_title and others are not returned by default).
var contactOptional = []string{
	"anniversary", "birthday", "contact_type", "custom_fields", "fax_numbers", "job_title",
	"lead_source_id", "opt_in_reason", "origin", "preferred_locale", "relationships",
	"social_accounts", "source_type", "spouse_name", "time_zone", "website", "ScoreValue",
}

var contactOptionalSet = func() map[string]bool {
	m := map[string]bool{}
	for _, p := range contactOptional {
		m[p] = true
	}
	return m
}()

// Writable properties and how PATCH merges them. Keyed lists model Keap's columns: EMAIL1..3,
// PHONE1..5, FAX1..2, BILLING/SHIPPING/OTHER and custom field ids are separate columns, so an
// item replaces only its own column.
var (
	contactStrings = map[string]bool{
		"given_name": true, "family_name": true, "middle_name": true, "prefix": true, "suffix": true,
		"preferred_name": true, "spouse_name": true, "job_title": true, "website": true,
		"time_zone": true, "preferred_locale": true, "contact_type": true, "anniversary": true,
		"birthday": true, "opt_in_reason": true, "source_type": true,
	}
	contactInts  = map[string]bool{"owner_id": true, "lead_source_id": true}
	contactKeyed = map[string]string{
		"email_addresses": "field", "phone_numbers": "field", "fax_numbers": "field",
		"addresses": "field", "custom_fields": "id",
	}
	contactReplaced = map[string]bool{"social_accounts": true, "company": true, "origin": true}
)

// updateMaskValues are the values [V1] allows in update_mask.
var updateMaskValues = map[string]bool{}

func init() {
	for _, m := range []map[string]bool{contactStrings, contactInts, contactReplaced} {
		for k := range m {
			updateMaskValues[k] = true
		}
	}
	for k := range contactKeyed {
		updateMaskValues[k] = true
	}
	updateMaskValues["notes"] = true // declared by [V1]; accepted and ignored (no notes model)
}

func isWritable(k string) bool {
	_, keyed := contactKeyed[k]
	return contactStrings[k] || contactInts[k] || keyed || contactReplaced[k]
}

// applyContactFields writes body into c. mask, when non-nil, limits which properties apply.
// A null value clears the property (ignored under Profile.NullIgnored). The field-keyed lists
// (email_addresses, phone_numbers, fax_numbers, addresses) replace the whole list, as v2
// documents for PATCH ("Any item not listed here will be removed"), or merge by `field` under
// Profile.PatchMergesLists; custom_fields always merge by id.
func (s *store) applyContactFields(c *contact, body map[string]any, mask map[string]bool) error {
	prof := s.profile.get()
	for k, v := range body {
		if !isWritable(k) || (mask != nil && !mask[k]) {
			continue
		}
		if v == nil {
			if !prof.NullIgnored {
				delete(c.f, k)
			}
			continue
		}
		if k == "custom_fields" {
			if err := s.checkCustomFields(v); err != nil {
				return err
			}
		}
		if key, ok := contactKeyed[k]; ok {
			old := c.f[k]
			if key == "field" && !prof.PatchMergesLists {
				old = nil // replace: nothing of the old list survives
			}
			merged, err := mergeKeyed(old, v, key)
			if err != nil {
				return badRequest("Input could not be converted to a valid request")
			}
			if len(merged) == 0 {
				delete(c.f, k)
			} else {
				c.f[k] = merged
			}
			continue
		}
		c.f[k] = v
	}
	if addrs, ok := c.f["addresses"].([]any); ok {
		for _, a := range addrs {
			m, _ := a.(map[string]any)
			if m["region"] != nil && m["region"] != "" && (m["country_code"] == nil || m["country_code"] == "") {
				return badRequest("country_code is required if region is specified")
			}
		}
	}
	return nil
}

func (s *store) checkCustomFields(v any) error {
	items, _ := v.([]any)
	for _, it := range items {
		m, _ := it.(map[string]any)
		id, err := asInt64(m["id"])
		if err != nil || !s.hasCustomField(recordContact, id) {
			return badRequest(fmt.Sprintf("Invalid custom field id: %v", m["id"]))
		}
	}
	return nil
}

// mergeKeyed merges incoming list items into old ones by key. An empty incoming list clears
// the property (the caller's explicit request); an item with null content removes its column.
func mergeKeyed(old, incoming any, key string) ([]any, error) {
	in, ok := incoming.([]any)
	if !ok {
		return nil, fmt.Errorf("%s: want a list", key)
	}
	if len(in) == 0 {
		return nil, nil
	}
	byKey := map[string]any{}
	prev, _ := old.([]any)
	for _, it := range prev {
		m, _ := it.(map[string]any)
		byKey[fmt.Sprint(m[key])] = it
	}
	for _, it := range in {
		m, ok := it.(map[string]any)
		if !ok || m[key] == nil {
			return nil, fmt.Errorf("%s: item without %s", key, key)
		}
		if key == "id" && m["content"] == nil {
			delete(byKey, fmt.Sprint(m[key]))
			continue
		}
		byKey[fmt.Sprint(m[key])] = it
	}
	keys := make([]string, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]any, 0, len(keys))
	for _, k := range keys {
		out = append(out, byKey[k])
	}
	return out, nil
}

// emails returns the contact's addresses, lower-cased, EMAIL1 first.
func (c *contact) emails() []string {
	list, _ := c.f["email_addresses"].([]any)
	out := make([]string, 0, len(list))
	for _, it := range list {
		m, _ := it.(map[string]any)
		if e, ok := m["email"].(string); ok && e != "" {
			out = append(out, strings.ToLower(e))
		}
	}
	return out
}

func (c *contact) str(k string) string {
	v, _ := c.f[k].(string)
	return v
}

// render builds the v1 JSON object with the default properties plus the optional ones asked for.
func (c *contact) render(optional map[string]bool) map[string]any {
	out := map[string]any{
		"id":           c.id,
		"date_created": keapTime(c.created),
		"last_updated": keapTime(c.updated),
	}
	for k, v := range c.f {
		if contactOptionalSet[k] && !optional[k] {
			continue
		}
		out[k] = v
	}
	if origin, ok := c.f["origin"].(map[string]any); ok && optional["origin"] {
		out["origin"] = map[string]any{"date": keapTime(c.created), "ip_address": origin["ip_address"]}
	}
	if len(c.emails()) > 0 {
		out["email_opted_in"] = c.f["opt_in_reason"] != nil
		out["email_status"] = "UnengagedNonMarketable"
		if c.f["opt_in_reason"] != nil {
			out["email_status"] = "SingleOptIn"
		}
	}
	ids := make([]int64, 0, len(c.tags))
	for id := range c.tags {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	out["tag_ids"] = ids
	return out
}

// touch stamps a change and rebuilds the cached default rendering.
func (s *store) touch(c *contact) {
	c.updated = s.stamp.next()
	c.listJSON, _ = json.Marshal(c.render(nil))
}

func contactEvent(key string, c *contact) event {
	return event{key: key, objectType: "contact", id: c.id, apiPath: fmt.Sprintf("/v1/contacts/%d", c.id), at: c.updated}
}

// createContact adds a contact from a v1 create body.
func (s *store) createContact(body map[string]any) (*contact, error) {
	var out *contact
	err := s.write(func() (evs []event, err error) {
		out, evs, err = s.createLocked(body)
		return evs, err
	})
	return out, err
}

func (s *store) createLocked(body map[string]any) (*contact, []event, error) {
	if !hasItems(body["email_addresses"]) && !hasItems(body["phone_numbers"]) {
		return nil, nil, badRequest("Contact must have at least one email address or phone number")
	}
	c := &contact{f: map[string]any{}, tags: map[int64]time.Time{}}
	if err := s.applyContactFields(c, body, nil); err != nil {
		return nil, nil, err
	}
	c.id = s.nextID("contact")
	s.touch(c)
	c.created = c.updated
	c.listJSON, _ = json.Marshal(c.render(nil))
	s.contacts[c.id] = c
	s.contactIDs = append(s.contactIDs, c.id)
	return c, []event{contactEvent("contact.add", c)}, nil
}

// updateContact applies a PATCH. Every accepted update stamps last_updated and emits
// contact.edit, even when no value changed (Keap saves the record either way).
func (s *store) updateContact(id int64, body map[string]any, mask map[string]bool) (*contact, error) {
	var out *contact
	err := s.write(func() (evs []event, err error) {
		out, evs, err = s.updateLocked(id, body, mask)
		return evs, err
	})
	return out, err
}

func (s *store) updateLocked(id int64, body map[string]any, mask map[string]bool) (*contact, []event, error) {
	c, ok := s.contacts[id]
	if !ok {
		return nil, nil, notFound(fmt.Sprintf("Contact with ID %d not found", id))
	}
	// Changes go to a copy so a rejected body leaves the stored contact untouched.
	next := &contact{id: c.id, created: c.created, f: cloneMap(c.f), tags: c.tags}
	if err := s.applyContactFields(next, body, mask); err != nil {
		return nil, nil, err
	}
	s.touch(next)
	s.contacts[id] = next
	return next, []event{contactEvent("contact.edit", next)}, nil
}

// upsertContact implements PUT /v1/contacts with duplicate_option, matching and writing under
// one lock so two concurrent PUTs for the same email cannot both create.
func (s *store) upsertContact(body map[string]any, option string) (*contact, error) {
	emails := (&contact{f: body}).emails()
	if len(emails) == 0 {
		return nil, badRequest("duplicate_option requires an email address")
	}
	var out *contact
	err := s.write(func() (evs []event, err error) {
		for _, id := range s.contactIDs {
			c := s.contacts[id]
			if !containsStr(c.emails(), emails[0]) {
				continue
			}
			if option == "EmailAndName" && (!strings.EqualFold(c.str("given_name"), str(body["given_name"])) ||
				!strings.EqualFold(c.str("family_name"), str(body["family_name"]))) {
				continue
			}
			out, evs, err = s.updateLocked(id, body, nil)
			return evs, err
		}
		out, evs, err = s.createLocked(body)
		return evs, err
	})
	return out, err
}

func (s *store) deleteContact(id int64) error {
	return s.write(func() ([]event, error) {
		c, ok := s.contacts[id]
		if !ok {
			return nil, notFound(fmt.Sprintf("Contact with ID %d not found", id))
		}
		delete(s.contacts, id)
		s.contactIDs = removeID(s.contactIDs, id)
		s.dropNotesOf(id)
		for tid := range c.tags {
			if t := s.tags[tid]; t != nil {
				delete(t.contacts, id)
			}
		}
		ev := contactEvent("contact.delete", c)
		ev.at = s.stamp.next()
		return []event{ev}, nil
	})
}

func hasItems(v any) bool {
	l, ok := v.([]any)
	return ok && len(l) > 0
}

func cloneMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func containsStr(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func asInt64(v any) (int64, error) {
	switch n := v.(type) {
	case json.Number:
		return n.Int64()
	case float64:
		return int64(n), nil
	case int64:
		return n, nil
	case int:
		return int64(n), nil
	}
	return 0, fmt.Errorf("not an integer: %v", v)
}
