package keap

import (
	"encoding/json"
	"fmt"
)

// NoteAsV1 builds [V1]'s Note from [V2]'s (GET /v2/notes), as v1 would send the same note if the
// two agree where Keap does not say they do (FACTS §7): text is v1's body, create_time and
// update_time are date_created and last_updated as v2 wrote them, assigned_to_user's id is
// user_id, ids become numbers, and custom_fields (which v1 lacks) stay. v2 names the last
// updater only by id; lastUpdatedBy gives v1's last_updated_by object for that id, nil when it
// is unknown, and then the note cannot be built (an error), as when v2's is not a note.
//
// Whether the result is what v1 sends is for the caller to establish, by comparing both
// versions of the same notes (see ingest's agreement).
func NoteAsV1(v2 json.RawMessage, lastUpdatedBy func(userID ID) json.RawMessage) (v1 json.RawMessage, err error) {
	var n struct {
		ID             ID              `json:"id"`
		ContactID      *ID             `json:"contact_id"`
		Title          json.RawMessage `json:"title"`
		Text           json.RawMessage `json:"text"`
		Type           json.RawMessage `json:"type"`
		CreateTime     json.RawMessage `json:"create_time"`
		UpdateTime     json.RawMessage `json:"update_time"`
		AssignedToUser *struct {
			ID *ID `json:"id"`
		} `json:"assigned_to_user"`
		LastUpdatedByUserID *ID             `json:"last_updated_by_user_id"`
		CustomFields        json.RawMessage `json:"custom_fields"`
	}
	if err := json.Unmarshal(v2, &n); err != nil {
		return nil, fmt.Errorf("a v2 note: %w", err)
	}
	if n.ID == 0 {
		return nil, fmt.Errorf("a v2 note without an id")
	}
	out := v1Note{ID: n.ID, ContactID: n.ContactID, Title: n.Title, Body: n.Text, Type: n.Type,
		DateCreated: n.CreateTime, LastUpdated: n.UpdateTime, CustomFields: n.CustomFields}
	if n.AssignedToUser != nil {
		out.UserID = n.AssignedToUser.ID
	}
	if n.LastUpdatedByUserID != nil {
		if out.LastUpdatedBy = lastUpdatedBy(*n.LastUpdatedByUserID); out.LastUpdatedBy == nil {
			return nil, fmt.Errorf("note %s: v2 names its last updater %s, whose v1 names are not known", n.ID, *n.LastUpdatedByUserID)
		}
	}
	return json.Marshal(out)
}

// v1Note is [V1]'s Note as NoteAsV1 builds it, each value as v2 gave it (absent stays absent,
// null stays null).
type v1Note struct {
	ID            ID              `json:"id"`
	ContactID     *ID             `json:"contact_id,omitempty"`
	Title         json.RawMessage `json:"title,omitempty"`
	Body          json.RawMessage `json:"body,omitempty"`
	Type          json.RawMessage `json:"type,omitempty"`
	UserID        *ID             `json:"user_id,omitempty"`
	LastUpdatedBy json.RawMessage `json:"last_updated_by,omitempty"`
	DateCreated   json.RawMessage `json:"date_created,omitempty"`
	LastUpdated   json.RawMessage `json:"last_updated,omitempty"`
	CustomFields  json.RawMessage `json:"custom_fields,omitempty"`
}
