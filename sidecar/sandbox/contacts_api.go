package sandbox

import "net/http"

func (a *restAPI) listContacts(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	pg, err := parsePage(q)
	if err != nil {
		return err
	}
	opt, err := optionalProps(q)
	if err != nil {
		return err
	}
	cq := contactQuery{email: q.Get("email"), given: q.Get("given_name"), family: q.Get("family_name"), page: pg,
		sinceExclusive: a.store.profile.get().SinceExclusive}
	if cq.since, err = timeParam(q.Get("since")); err != nil {
		return err
	}
	if cq.until, err = timeParam(q.Get("until")); err != nil {
		return err
	}
	switch cq.order = q.Get("order"); cq.order {
	case "", "id", "date_created", "last_updated", "name", "firstName", "email":
	default:
		return badRequest("Invalid order: " + cq.order)
	}
	switch q.Get("order_direction") {
	case "", "ASCENDING":
	case "DESCENDING":
		cq.descending = true
	default:
		return badRequest("Invalid order_direction: " + q.Get("order_direction"))
	}
	items, total := a.store.listContacts(cq)
	next, prev := pg.links(a.baseURL(), r, len(items), total)
	return writeList(w, "contacts", items, total, next, prev, func(c *contact) ([]byte, error) {
		if len(opt) == 0 {
			return c.listJSON, nil
		}
		return marshal(c.render(opt))
	})
}

func (a *restAPI) getContact(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	opt, err := optionalProps(r.URL.Query())
	if err != nil {
		return err
	}
	c, ok := a.store.getContact(id)
	if !ok {
		return notFound("Contact with ID " + r.PathValue("id") + " not found")
	}
	writeJSON(w, http.StatusOK, c.render(opt))
	return nil
}

func (a *restAPI) createContact(w http.ResponseWriter, r *http.Request) error {
	var body map[string]any
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	c, err := a.store.createContact(body)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, c.render(allOptional()))
	return nil
}

// upsertContact: PUT answers 200 whether it created or updated, as [V1] declares only 200.
func (a *restAPI) upsertContact(w http.ResponseWriter, r *http.Request) error {
	var body map[string]any
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	option, _ := body["duplicate_option"].(string)
	delete(body, "duplicate_option")
	if option == "" {
		option = "Email"
	}
	c, err := a.store.upsertContact(body, option)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c.render(allOptional()))
	return nil
}

func (a *restAPI) patchContact(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var mask map[string]bool
	if values := listValues(r.URL.Query(), "update_mask"); len(values) > 0 {
		mask = map[string]bool{}
		for _, v := range values {
			if !updateMaskValues[v] {
				return badRequest("Invalid update_mask value: " + v)
			}
			mask[v] = true
		}
	}
	var body map[string]any
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	c, err := a.store.updateContact(id, body, mask)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c.render(allOptional()))
	return nil
}

func (a *restAPI) deleteContact(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	if err := a.store.deleteContact(id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *restAPI) contactModel(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, a.store.contactModel())
	return nil
}

func (a *restAPI) createCustomField(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Label     string `json:"label"`
		FieldType string `json:"field_type"`
		Options   []struct {
			Label string `json:"label"`
		} `json:"options"`
	}
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	options := make([]string, len(body.Options))
	for i, o := range body.Options {
		options[i] = o.Label
	}
	var f customField
	_ = a.store.write(func() ([]event, error) {
		f = a.store.addCustomField(body.Label, body.FieldType, options...)
		return nil, nil
	})
	writeJSON(w, http.StatusCreated, f)
	return nil
}

// optionalProps parses optional_properties. Unknown names are refused rather than ignored so
// a client typo shows up in tests instead of as silently missing data.
func optionalProps(q map[string][]string) (map[string]bool, error) {
	values := listValues(q, "optional_properties")
	if len(values) == 0 {
		return nil, nil
	}
	out := map[string]bool{}
	for _, v := range values {
		if !contactOptionalSet[v] && !isWritable(v) && !contactSystemProps[v] {
			return nil, badRequest("Invalid optional property: " + v)
		}
		out[v] = true
	}
	return out, nil
}

// allOptional is what create/update responses carry: the full contact.
func allOptional() map[string]bool { return contactOptionalSet }

var contactSystemProps = map[string]bool{
	"id": true, "date_created": true, "last_updated": true, "tag_ids": true,
	"email_status": true, "email_opted_in": true, "company_name": true,
}
