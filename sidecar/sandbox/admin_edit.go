package sandbox

import "net/http"

// editRoutes are the "person in the Keap app" edits; each fires hooks like the API does.
func (a *admin) editRoutes(h func(string, handlerFunc)) {
	s := a.s
	h("POST /_sandbox/contacts", func(w http.ResponseWriter, r *http.Request) error {
		var body map[string]any
		if err := decodeBody(r, &body); err != nil {
			return err
		}
		c, err := s.store.createContact(body)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusCreated, c.render(allOptional()))
		return nil
	})
	h("PATCH /_sandbox/contacts/{id}", func(w http.ResponseWriter, r *http.Request) error {
		id, err := pathID(r, "id")
		if err != nil {
			return err
		}
		var body map[string]any
		if err := decodeBody(r, &body); err != nil {
			return err
		}
		c, err := s.store.updateContact(id, body, nil)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, c.render(allOptional()))
		return nil
	})
	h("DELETE /_sandbox/contacts/{id}", func(w http.ResponseWriter, r *http.Request) error {
		id, err := pathID(r, "id")
		if err != nil {
			return err
		}
		if err := s.store.deleteContact(id); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
	h("POST /_sandbox/tags", func(w http.ResponseWriter, r *http.Request) error {
		var in struct {
			Name        string `json:"name"`
			Description string `json:"description"`
		}
		if err := decodeBody(r, &in); err != nil {
			return err
		}
		t, err := s.store.createTag(in.Name, in.Description, 0)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusCreated, t)
		return nil
	})
	h("POST /_sandbox/contacts/{id}/tags/{tagId}", func(w http.ResponseWriter, r *http.Request) error {
		return a.tag(w, r, true)
	})
	h("DELETE /_sandbox/contacts/{id}/tags/{tagId}", func(w http.ResponseWriter, r *http.Request) error {
		return a.tag(w, r, false)
	})
	h("POST /_sandbox/orders", func(w http.ResponseWriter, r *http.Request) error {
		var in orderInput
		if err := decodeBody(r, &in); err != nil {
			return err
		}
		o, err := s.enterOrder(in)
		if err != nil {
			return err
		}
		body, _ := s.store.getOrder(o.id)
		writeJSON(w, http.StatusCreated, body)
		return nil
	})
	h("DELETE /_sandbox/orders/{id}", func(w http.ResponseWriter, r *http.Request) error {
		id, err := pathID(r, "id")
		if err != nil {
			return err
		}
		if err := s.store.deleteOrder(id); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
	h("POST /_sandbox/orders/{id}/payments", func(w http.ResponseWriter, r *http.Request) error {
		id, err := pathID(r, "id")
		if err != nil {
			return err
		}
		var in struct {
			Amount float64 `json:"amount"`
		}
		if err := decodeBody(r, &in); err != nil {
			return err
		}
		if err := s.PayOrder(id, in.Amount); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
	h("PATCH /_sandbox/subscriptions/{id}", func(w http.ResponseWriter, r *http.Request) error {
		id, err := pathID(r, "id")
		if err != nil {
			return err
		}
		var in struct {
			Active *bool `json:"active"`
		}
		if err := decodeBody(r, &in); err != nil {
			return err
		}
		sub, err := s.store.updateSubscription(id, func(sub *subscription) {
			if in.Active != nil {
				sub.active = *in.Active
			}
		})
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, sub.v2())
		return nil
	})
}

func (a *admin) tag(w http.ResponseWriter, r *http.Request, apply bool) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	tagID, err := pathID(r, "tagId")
	if err != nil {
		return err
	}
	if err := a.s.setTag(id, tagID, apply); err != nil {
		return badRequest(err.Error())
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
