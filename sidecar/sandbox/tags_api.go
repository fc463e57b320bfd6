package sandbox

import (
	"fmt"
	"net/http"
	"strconv"
)

func (a *restAPI) listTags(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	pg, err := parsePage(q)
	if err != nil {
		return err
	}
	var category int64
	if v := q.Get("category"); v != "" {
		if category, err = strconv.ParseInt(v, 10, 64); err != nil {
			return badRequest("Invalid category: " + v)
		}
	}
	return a.writePage(w, r, "tags", a.store.listTags(q.Get("name"), category), pg)
}

// writePage pages an already-filtered list.
func (a *restAPI) writePage(w http.ResponseWriter, r *http.Request, key string, all []map[string]any, pg page) error {
	lo, hi := pg.bounds(len(all))
	next, prev := pg.links(a.baseURL(), r, hi-lo, len(all))
	return writeList(w, key, all[lo:hi], len(all), next, prev, func(m map[string]any) ([]byte, error) { return marshal(m) })
}

func (a *restAPI) getTag(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	t, ok := a.store.getTag(id)
	if !ok {
		return notFound(fmt.Sprintf("Tag with ID %d not found", id))
	}
	writeJSON(w, http.StatusOK, t)
	return nil
}

func (a *restAPI) createTag(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Name        string `json:"name"`
		Description string `json:"description"`
		Category    *struct {
			ID int64 `json:"id"`
		} `json:"category"`
	}
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	var cat int64
	if body.Category != nil {
		cat = body.Category.ID
	}
	t, err := a.store.createTag(body.Name, body.Description, cat)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, t)
	return nil
}

func (a *restAPI) createCategory(w http.ResponseWriter, r *http.Request) error {
	var body struct{ Name, Description string }
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a.store.createCategory(body.Name, body.Description))
	return nil
}

func (a *restAPI) listContactTags(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	pg, err := parsePage(r.URL.Query())
	if err != nil {
		return err
	}
	list, ok := a.store.contactTags(id)
	if !ok {
		return notFound(fmt.Sprintf("Contact with ID %d not found", id))
	}
	return a.writePage(w, r, "tags", list, pg)
}

func (a *restAPI) listTaggedContacts(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	pg, err := parsePage(r.URL.Query())
	if err != nil {
		return err
	}
	list, ok := a.store.taggedContacts(id)
	if !ok {
		return notFound(fmt.Sprintf("Tag with ID %d not found", id))
	}
	return a.writePage(w, r, "contacts", list, pg)
}

// applyTagsToContact answers the per-tag results as an object keyed by tag id; [V1] declares
// an array of Entry objects, a springfox rendering of Map<Long,String> (FACTS.md §8).
func (a *restAPI) applyTagsToContact(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var body struct {
		TagIDs []int64 `json:"tagIds"`
	}
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	if _, ok := a.store.getContact(id); !ok {
		return notFound(fmt.Sprintf("Contact with ID %d not found", id))
	}
	pairs := make([][2]int64, 0, len(body.TagIDs))
	for _, t := range body.TagIDs {
		pairs = append(pairs, [2]int64{id, t})
	}
	writeJSON(w, http.StatusOK, a.store.setTags(pairs, true, false))
	return nil
}

func (a *restAPI) applyTagToContacts(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var body struct {
		IDs []int64 `json:"ids"`
	}
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	if !a.store.tagExists(id) {
		return notFound(fmt.Sprintf("Tag with ID %d not found", id))
	}
	pairs := make([][2]int64, 0, len(body.IDs))
	for _, c := range body.IDs {
		pairs = append(pairs, [2]int64{c, id})
	}
	writeJSON(w, http.StatusOK, a.store.setTags(pairs, true, true))
	return nil
}

// removeListed serves the removals whose other side is listed in ?ids= (DELETE
// /contacts/{id}/tags and /tags/{id}/contacts); tagSide says which side {id} names.
func (a *restAPI) removeListed(tagSide bool) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		id, err := pathID(r, "id")
		if err != nil {
			return err
		}
		others, err := parseIDs(listValues(r.URL.Query(), "ids"))
		if err != nil {
			return err
		}
		if len(others) == 0 {
			return badRequest("ids is required")
		}
		return a.removePairs(w, id, others, tagSide)
	}
}

// removeOne serves the removals whose other side is a path parameter (DELETE
// /contacts/{id}/tags/{tagId} and /tags/{id}/contacts/{contactId}).
func (a *restAPI) removeOne(other string, tagSide bool) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		id, err := pathID(r, "id")
		if err != nil {
			return err
		}
		otherID, err := pathID(r, other)
		if err != nil {
			return err
		}
		return a.removePairs(w, id, []int64{otherID}, tagSide)
	}
}

// removePairs removes tags; removing a tag that is not applied is a no-op 204. An unknown
// anchor (the contact, or the tag, named in the path) is a 404.
func (a *restAPI) removePairs(w http.ResponseWriter, anchor int64, others []int64, tagSide bool) error {
	pairs := make([][2]int64, 0, len(others))
	for _, o := range others {
		if tagSide {
			pairs = append(pairs, [2]int64{o, anchor})
		} else {
			pairs = append(pairs, [2]int64{anchor, o})
		}
	}
	if tagSide && !a.store.tagExists(anchor) {
		return notFound(fmt.Sprintf("Tag with ID %d not found", anchor))
	}
	if _, ok := a.store.getContact(anchor); !tagSide && !ok {
		return notFound(fmt.Sprintf("Contact with ID %d not found", anchor))
	}
	a.store.setTags(pairs, false, tagSide)
	w.WriteHeader(http.StatusNoContent)
	return nil
}
