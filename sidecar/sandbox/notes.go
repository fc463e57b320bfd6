package sandbox

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"
)

// note is a Keap note on a contact, served through [V1] /notes (keapsync reads and writes notes
// there), and through [V2] for its custom fields (v1custom.go).
type note struct {
	id, contactID, userID int64
	title, body, kind     string
	created, updated      time.Time
	custom                customValues // v2 alone shows and changes them (v1custom.go)
}

// v1 renders [V1]'s Note: ids are numbers; last_updated is its clock.
func (n *note) v1() map[string]any {
	out := map[string]any{
		"id": n.id, "contact_id": n.contactID,
		"date_created": keapTime(n.created), "last_updated": keapTime(n.updated),
	}
	for k, v := range map[string]string{"title": n.title, "body": n.body, "type": n.kind} {
		if v != "" {
			out[k] = v
		}
	}
	if n.userID != 0 {
		out["user_id"] = n.userID
		out["last_updated_by"] = map[string]any{"user_id": n.userID}
	}
	return out
}

// noteInput is [V1]'s RequestNote / UpdateNote. A PATCH changes the properties its body holds,
// a null clearing one, so which were present is kept.
type noteInput struct {
	Title     *string `json:"title"`
	Body      *string `json:"body"`
	Type      *string `json:"type"`
	UserID    *int64  `json:"user_id"`
	ContactID *int64  `json:"contact_id"`
	present   map[string]bool
}

func (in *noteInput) UnmarshalJSON(b []byte) error {
	type plain noteInput
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(b, &keys); err != nil {
		return err
	}
	*in = noteInput(p)
	in.present = map[string]bool{}
	for k := range keys {
		in.present[k] = true
	}
	return nil
}

func (in noteInput) apply(s *store, n *note, mask []string) error {
	set := func(prop string) bool {
		if len(mask) > 0 {
			return slices.Contains(mask, prop)
		}
		return in.present[prop]
	}
	if set("title") {
		n.title = deref(in.Title)
	}
	if set("body") {
		n.body = deref(in.Body)
	}
	if set("type") {
		n.kind = deref(in.Type)
	}
	if set("user_id") {
		n.userID = 0
		if in.UserID != nil {
			n.userID = *in.UserID
		}
	}
	if set("contact_id") {
		if in.ContactID == nil || s.contacts[*in.ContactID] == nil {
			return badRequest("Contact not found")
		}
		n.contactID = *in.ContactID
	}
	return nil
}

func noteEvent(key string, n *note) event {
	return event{key: key, objectType: "note", id: n.id, apiPath: fmt.Sprintf("/v1/notes/%d", n.id), at: n.updated}
}

func (s *store) createNote(in noteInput) (*note, error) {
	var out *note
	err := s.write(func() ([]event, error) {
		if in.ContactID == nil {
			return nil, badRequest("contact_id is required")
		}
		n := &note{}
		if err := in.apply(s, n, []string{"title", "body", "type", "user_id", "contact_id"}); err != nil {
			return nil, err
		}
		n.id = s.nextID("note")
		n.created = s.stamp.next()
		n.updated = n.created
		addRecord(&s.notes, &s.noteIDs, n.id, n)
		out = n
		return []event{noteEvent("note.add", n)}, nil
	})
	return out, err
}

func (s *store) updateNote(id int64, in noteInput, mask []string) (*note, error) {
	var out *note
	err := s.write(func() ([]event, error) {
		n := s.notes[id]
		if n == nil {
			return nil, notFound(fmt.Sprintf("Note with ID %d not found", id))
		}
		next := *n
		if err := in.apply(s, &next, mask); err != nil {
			return nil, err
		}
		*n = next
		n.updated = s.stamp.next()
		out = n
		return []event{noteEvent("note.edit", n)}, nil
	})
	return out, err
}

func (s *store) deleteNote(id int64) error {
	return s.write(func() ([]event, error) {
		n := s.notes[id]
		if n == nil {
			return nil, notFound(fmt.Sprintf("Note with ID %d not found", id))
		}
		s.dropNote(n)
		n.updated = s.stamp.next()
		return []event{noteEvent("note.delete", n)}, nil
	})
}

// dropNote removes a note from the store (under the write lock).
func (s *store) dropNote(n *note) {
	delete(s.notes, n.id)
	s.noteIDs = removeID(s.noteIDs, n.id)
}

// dropNotesOf removes a deleted contact's notes, as Keap deletes them with it (under the write
// lock; no note.delete is emitted, the contact.delete says it).
func (s *store) dropNotesOf(contactID int64) {
	for _, id := range slices.Clone(s.noteIDs) {
		if n := s.notes[id]; n.contactID == contactID {
			s.dropNote(n)
		}
	}
}

// listNotes serves limit/offset paging filtered by contact_id and user_id, in id order. [V1]
// offers no filter by time.
func (a *restAPI) listNotes(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	pg, err := parsePage(q)
	if err != nil {
		return err
	}
	filters := map[string]int64{}
	for _, name := range []string{"contact_id", "user_id"} {
		if v := q.Get(name); v != "" {
			if filters[name], err = strconv.ParseInt(v, 10, 64); err != nil {
				return badRequest("Invalid " + name + ": " + v)
			}
		}
	}
	a.store.mu.RLock()
	var all []map[string]any
	for _, id := range a.store.noteIDs {
		n := a.store.notes[id]
		if c := filters["contact_id"]; c != 0 && n.contactID != c {
			continue
		}
		if u := filters["user_id"]; u != 0 && n.userID != u {
			continue
		}
		all = append(all, n.v1())
	}
	a.store.mu.RUnlock()
	return a.writePage(w, r, "notes", all, pg)
}

func (a *restAPI) getNote(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	a.store.mu.RLock()
	defer a.store.mu.RUnlock()
	n := a.store.notes[id]
	if n == nil {
		return notFound(fmt.Sprintf("Note with ID %d not found", id))
	}
	writeJSON(w, http.StatusOK, n.v1())
	return nil
}

func (a *restAPI) createNoteV1(w http.ResponseWriter, r *http.Request) error {
	return createAndRender(a, w, r, a.store.createNote, (*note).v1)
}

func (a *restAPI) patchNoteV1(w http.ResponseWriter, r *http.Request) error {
	return patchAndRender(a, w, r, a.store.updateNote, (*note).v1)
}

func (a *restAPI) deleteNoteV1(w http.ResponseWriter, r *http.Request) error {
	return v2Delete(w, r, a.store.deleteNote)
}
