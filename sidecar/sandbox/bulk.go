package sandbox

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// BulkEditContacts changes many contacts at once, as a bulk action in Keap's web app (or an
// import) does: every contact gets the same fields and one shared last_updated stamp, so a
// listing by last_updated meets a run of ties as long as the edit. No ids: every contact.
// Emits contact.edit for each.
func (s *Server) BulkEditContacts(ids []int64, fields map[string]any) error {
	body, err := normalize(fields)
	if err != nil {
		return err
	}
	if err := s.store.bulkEdit(ids, body); err != nil {
		return fmt.Errorf("bulk edit: %w", err)
	}
	return nil
}

func (s *store) bulkEdit(ids []int64, body map[string]any) error {
	return s.write(func() ([]event, error) {
		if len(ids) == 0 {
			ids = append([]int64(nil), s.contactIDs...)
		}
		// Validate every contact's change before storing any: one bulk action, all or nothing.
		next := make([]*contact, 0, len(ids))
		for _, id := range ids {
			c, ok := s.contacts[id]
			if !ok {
				return nil, notFound(fmt.Sprintf("Contact with ID %d not found", id))
			}
			n := &contact{id: c.id, created: c.created, f: cloneMap(c.f), tags: c.tags}
			if err := s.applyContactFields(n, body, nil); err != nil {
				return nil, err
			}
			next = append(next, n)
		}
		stamp := s.stamp.next()
		evs := make([]event, 0, len(next))
		for _, n := range next {
			n.updated = stamp
			n.listJSON, _ = json.Marshal(n.render(nil))
			s.contacts[n.id] = n
			evs = append(evs, contactEvent("contact.edit", n))
		}
		return evs, nil
	})
}

func (a *admin) bulkRoutes(h func(string, handlerFunc)) {
	h("POST /_sandbox/contacts/bulk", func(w http.ResponseWriter, r *http.Request) error {
		var in struct {
			IDs []int64        `json:"ids"`
			Set map[string]any `json:"set"`
		}
		if err := decodeBody(r, &in); err != nil {
			return err
		}
		if err := a.s.BulkEditContacts(in.IDs, in.Set); err != nil {
			return badRequest(err.Error())
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
}
