package sandbox

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"unicode"
)

// customField is custom-field metadata as /v1/contacts/model serves it (v2's models render it
// with v2Meta).
type customField struct {
	ID        int64  `json:"id"`
	Label     string `json:"label"`
	FieldName string `json:"field_name"`
	FieldType string `json:"field_type"`
	// Options are a select field's choices (Dropdown, ListBox, Radio...); none for other types.
	Options []customFieldOption `json:"options,omitempty"`
	// RecordType is v2's name of the records the field belongs to: CONTACT, COMPANY,
	// TASK_NOTE_APPOINTMENT, OPPORTUNITY, SUBSCRIPTION or ORDER (CustomFieldMetaData.record_type).
	RecordType string `json:"record_type"`
}

// customFieldOption is one choice of a select field (CustomFieldOption: its id is a string).
type customFieldOption struct {
	ID    string `json:"id"`
	Label string `json:"label"`
}

// Record types of custom fields (v2's CustomFieldMetaData.record_type) the sandbox keeps.
const (
	recordContact      = "CONTACT"
	recordCompany      = "COMPANY"
	recordTask         = "TASK_NOTE_APPOINTMENT"
	recordOpportunity  = "OPPORTUNITY"
	recordSubscription = "SUBSCRIPTION"
	recordOrder        = "ORDER"
)

func (s *store) hasCustomField(recordType string, id int64) bool {
	i := s.customFieldIndex(id)
	return i >= 0 && s.fields[i].RecordType == recordType
}

func (s *store) customFieldIndex(id int64) int {
	for i, f := range s.fields {
		if f.ID == id {
			return i
		}
	}
	return -1
}

// addCustomField creates contact custom-field metadata; the caller holds the write lock.
func (s *store) addCustomField(label, fieldType string, options ...string) customField {
	return s.addCustomFieldOf(recordContact, label, fieldType, options...)
}

// addCustomFieldOf creates custom-field metadata for a record type; the caller holds the write
// lock. Like Keap's, the field's database name is made once from its first label and never
// changes. fieldType is spelled as v1 does (WholeNumber); v2's model spells it WHOLE_NUMBER.
func (s *store) addCustomFieldOf(recordType, label, fieldType string, options ...string) customField {
	id := s.nextID("customField")
	f := customField{ID: id, Label: label, FieldName: fmt.Sprintf("%s%d", sanitizeName(label), id), FieldType: fieldType, RecordType: recordType}
	for _, o := range options {
		f.Options = append(f.Options, customFieldOption{ID: strconv.FormatInt(s.nextID("customFieldOption"), 10), Label: o})
	}
	s.fields = append(s.fields, f)
	return f
}

// renameCustomField changes a field's label; the caller holds the write lock. Values are kept
// by id, so no contact changes (and Keap sends no hook for it).
func (s *store) renameCustomField(id int64, label string) error {
	i := s.customFieldIndex(id)
	if i < 0 {
		return notFound(fmt.Sprintf("Custom field %d not found", id))
	}
	s.fields[i].Label = label
	return nil
}

func sanitizeName(s string) string {
	out := make([]rune, 0, len(s))
	for _, r := range s {
		if (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') {
			out = append(out, r)
		}
	}
	return string(out)
}

func (s *store) contactModel() map[string]any {
	s.mu.RLock()
	defer s.mu.RUnlock()
	fields := []customField{}
	for _, f := range s.fields {
		if f.RecordType == recordContact {
			fields = append(fields, f)
		}
	}
	return map[string]any{"custom_fields": fields, "optional_properties": contactOptional}
}

// v2Model is [V2]'s ObjectModel of a record type (GET /rest/v2/<type>/model): its custom fields
// as CustomFieldMetaData, ids as strings and types as v2 spells them.
func (s *store) v2Model(recordType string) map[string]any {
	s.mu.RLock()
	defer s.mu.RUnlock()
	fields := []map[string]any{}
	for _, f := range s.fields {
		if f.RecordType != recordType {
			continue
		}
		m := map[string]any{"id": strconv.FormatInt(f.ID, 10), "label": f.Label, "field_type": v2FieldType(f.FieldType),
			"record_type": f.RecordType}
		if len(f.Options) > 0 {
			m["options"] = f.Options
		}
		fields = append(fields, m)
	}
	return map[string]any{"custom_fields": fields, "optional_properties": []string{}}
}

// v2FieldType spells a v1 field type as v2's enum does: WholeNumber -> WHOLE_NUMBER.
func v2FieldType(v1 string) string {
	var b strings.Builder
	for i, r := range v1 {
		if i > 0 && unicode.IsUpper(r) {
			b.WriteByte('_')
		}
		b.WriteRune(unicode.ToUpper(r))
	}
	return b.String()
}

// v2ModelOf serves GET /rest/v2/<type>/model for a record type.
func (a *restAPI) v2ModelOf(recordType string) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		writeJSON(w, http.StatusOK, a.store.v2Model(recordType))
		return nil
	}
}

// customValues are a record's custom-field values by field id (v2 records: companies, tasks,
// opportunities, subscriptions; notes and orders, in v2 only).
type customValues map[int64]any

// v2 renders the values as [V2]'s CustomFieldValue list (ids as strings), by id. Every record
// carries the list, empty or not.
func (cv customValues) v2() []map[string]any {
	ids := make([]int64, 0, len(cv))
	for id := range cv {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	out := make([]map[string]any, 0, len(ids))
	for _, id := range ids {
		out = append(out, map[string]any{"id": strconv.FormatInt(id, 10), "content": cv[id]})
	}
	return out
}

// askedOnly drops a v2 record's custom_fields unless the request's fields asks for them, as
// Keap's companies, tasks and opportunities leave them out by default (their fields parameter;
// v2 subscriptions, which take no fields, always carry them). Reads only: a create or patch
// answers with the whole record.
func askedOnly(r *http.Request, rec map[string]any) map[string]any {
	for _, f := range r.URL.Query()["fields"] {
		if slices.Contains(strings.Split(f, ","), "custom_fields") {
			return rec
		}
	}
	delete(rec, "custom_fields")
	return rec
}

// customFieldInput is one item of a v2 request's custom_fields (CustomFieldValue: a string id,
// though a number is taken too).
type customFieldInput struct {
	ID      json.Number `json:"id"`
	Content any         `json:"content"`
}

// setCustomValues applies a request's custom_fields to a record of the record type; the caller
// holds the write lock. As Keap documents for v2 lists, the list replaces the record's values:
// a field not listed (or listed with null content) is cleared. Every id must be a field of the
// record type, or nothing changes.
func (s *store) setCustomValues(recordType string, cv *customValues, in []customFieldInput, set bool) error {
	if !set {
		return nil
	}
	next := customValues{}
	for _, f := range in {
		id, err := strconv.ParseInt(f.ID.String(), 10, 64)
		if err != nil || !s.hasCustomField(recordType, id) {
			return v2Error(http.StatusBadRequest, fmt.Sprintf("Invalid custom field id: %s", f.ID))
		}
		if f.Content != nil {
			next[id] = f.Content
		}
	}
	*cv = next
	return nil
}
