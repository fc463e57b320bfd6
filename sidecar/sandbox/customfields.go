package sandbox

import "fmt"

// customField is contact custom-field metadata as /v1/contacts/model serves it.
type customField struct {
	ID        int64  `json:"id"`
	Label     string `json:"label"`
	FieldName string `json:"field_name"`
	FieldType string `json:"field_type"`
	// RecordType is always CONTACT: the sandbox models contact custom fields only.
	RecordType string `json:"record_type"`
}

func (s *store) hasCustomField(id int64) bool {
	for _, f := range s.fields {
		if f.ID == id {
			return true
		}
	}
	return false
}

// addCustomField creates contact custom-field metadata; the caller holds the write lock.
func (s *store) addCustomField(label, fieldType string) customField {
	id := s.nextID("customField")
	f := customField{ID: id, Label: label, FieldName: fmt.Sprintf("%s%d", sanitizeName(label), id), FieldType: fieldType, RecordType: "CONTACT"}
	s.fields = append(s.fields, f)
	return f
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
