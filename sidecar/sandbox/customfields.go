package sandbox

import (
	"fmt"
	"strconv"
)

// customField is contact custom-field metadata as /v1/contacts/model serves it.
type customField struct {
	ID        int64  `json:"id"`
	Label     string `json:"label"`
	FieldName string `json:"field_name"`
	FieldType string `json:"field_type"`
	// Options are a select field's choices (Dropdown, ListBox, Radio...); none for other types.
	Options []customFieldOption `json:"options,omitempty"`
	// RecordType is always CONTACT: the sandbox models contact custom fields only.
	RecordType string `json:"record_type"`
}

// customFieldOption is one choice of a select field (CustomFieldOption: its id is a string).
type customFieldOption struct {
	ID    string `json:"id"`
	Label string `json:"label"`
}

func (s *store) hasCustomField(id int64) bool {
	return s.customFieldIndex(id) >= 0
}

func (s *store) customFieldIndex(id int64) int {
	for i, f := range s.fields {
		if f.ID == id {
			return i
		}
	}
	return -1
}

// addCustomField creates contact custom-field metadata; the caller holds the write lock. Like
// Keap's, the field's database name is made once from its first label and never changes.
func (s *store) addCustomField(label, fieldType string, options ...string) customField {
	id := s.nextID("customField")
	f := customField{ID: id, Label: label, FieldName: fmt.Sprintf("%s%d", sanitizeName(label), id), FieldType: fieldType, RecordType: "CONTACT"}
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
	fields := make([]customField, len(s.fields))
	copy(fields, s.fields)
	return map[string]any{"custom_fields": fields, "optional_properties": contactOptional}
}
