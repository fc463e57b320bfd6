package sandbox

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"
)

type tagCategory struct {
	ID          int64     `json:"id"`
	Name        string    `json:"name"`
	Description string    `json:"description,omitempty"`
	created     time.Time // v2 shows it; v1 does not
}

type tag struct {
	id          int64
	name        string
	description string
	category    int64
	contacts    map[int64]time.Time // contact id -> date applied
	// created and updated are the times v2 shows (v1 shows none); updated moves when the tag
	// itself changes, not when it is applied to or removed from a contact.
	created, updated time.Time
}

func (s *store) renderTag(t *tag) map[string]any {
	out := map[string]any{"id": t.id, "name": t.name}
	if t.description != "" {
		out["description"] = t.description
	}
	if c := s.categories[t.category]; c != nil {
		out["category"] = c
	}
	return out
}

func (s *store) createCategory(name, description string) tagCategory {
	var out tagCategory
	_ = s.write(func() ([]event, error) {
		c := &tagCategory{ID: s.nextID("category"), Name: name, Description: description, created: s.stamp.next()}
		s.categories[c.ID] = c
		out = *c
		return nil, nil
	})
	return out
}

// createTag adds a tag and emits contactGroup.add (a tag is a "contact group" in Keap).
func (s *store) createTag(name, description string, category int64) (map[string]any, error) {
	var out map[string]any
	err := s.write(func() ([]event, error) {
		if category != 0 && s.categories[category] == nil {
			return nil, badRequest(fmt.Sprintf("Tag category %d not found", category))
		}
		now := s.stamp.next()
		t := &tag{id: s.nextID("tag"), name: name, description: description, category: category,
			contacts: map[int64]time.Time{}, created: now, updated: now}
		s.tags[t.id] = t
		s.tagIDs = append(s.tagIDs, t.id)
		out = s.renderTag(t)
		return []event{{key: "contactGroup.add", objectType: "contactGroup", id: t.id, apiPath: fmt.Sprintf("/v1/tags/%d", t.id), at: now}}, nil
	})
	return out, err
}

// editTag changes a tag's description, as a person does in Keap's web app (v1 cannot), and
// emits contactGroup.edit.
func (s *store) editTag(id int64, description string) error {
	return s.write(func() ([]event, error) {
		t := s.tags[id]
		if t == nil {
			return nil, notFound(fmt.Sprintf("Tag with ID %d not found", id))
		}
		t.description, t.updated = description, s.stamp.next()
		return []event{{key: "contactGroup.edit", objectType: "contactGroup", id: id, apiPath: fmt.Sprintf("/v1/tags/%d", id), at: t.updated}}, nil
	})
}

// Tag application results, as in [V1]'s enum.
const (
	resultSuccess         = "SUCCESS"
	resultDuplicate       = "DUPLICATE"
	resultContactNotFound = "CONTACT_NOT_FOUND"
	resultTagNotFound     = "TAG_ID_NOT_FOUND"
)

// setTag applies or removes one tag on one contact; the caller holds the write lock. A real
// change stamps the contact's last_updated (so since/until sees tag changes; not under
// TagsKeepStamp) and yields a contactGroup.applied/removed event. Keap leaves open which id that
// event carries (FACTS.md §6): by default the contact (apiUrl: the contact's tags), under
// Profile.TagHookCarriesTagIDs the tag (apiUrl: the tag); Profile.TagHookOmitsAPIURL drops the apiUrl.
func (s *store) setTag(contactID, tagID int64, apply bool) (string, []event) {
	c, t := s.contacts[contactID], s.tags[tagID]
	if c == nil {
		return resultContactNotFound, nil
	}
	if t == nil {
		return resultTagNotFound, nil
	}
	_, has := c.tags[tagID]
	if has == apply {
		return resultDuplicate, nil
	}
	next := &contact{id: c.id, created: c.created, f: c.f, tags: make(map[int64]time.Time, len(c.tags)+1)}
	for k, v := range c.tags {
		next.tags[k] = v
	}
	key := "contactGroup.removed"
	if apply {
		key = "contactGroup.applied"
	}
	// Under TagsKeepStamp the contact keeps its last_updated (FACTS §7: unknown whether Keap
	// bumps it), so only the tag list tells the change.
	applied := s.stamp.next()
	if s.profile.get().TagsKeepStamp {
		next.updated = c.updated
	} else {
		next.updated = applied
	}
	if apply {
		next.tags[tagID] = applied
		t.contacts[contactID] = applied
	} else {
		delete(next.tags, tagID)
		delete(t.contacts, contactID)
	}
	next.listJSON, _ = json.Marshal(next.render(nil))
	s.contacts[contactID] = next
	ev := event{key: key, objectType: "contactGroup", id: contactID,
		apiPath: fmt.Sprintf("/v1/contacts/%d/tags", contactID), at: applied}
	prof := s.profile.get()
	if prof.TagHookCarriesTagIDs {
		ev.id, ev.apiPath = tagID, fmt.Sprintf("/v1/tags/%d", tagID)
	}
	if prof.TagHookOmitsAPIURL {
		ev.apiPath = ""
	}
	return resultSuccess, []event{ev}
}

// setTags applies or removes tags for pairs produced by each; results are keyed by the id
// that varies (tag ids from the contact side, contact ids from the tag side).
func (s *store) setTags(pairs [][2]int64, apply bool, keyByContact bool) map[string]string {
	results := map[string]string{}
	_ = s.write(func() ([]event, error) {
		var evs []event
		for _, p := range pairs {
			res, ev := s.setTag(p[0], p[1], apply)
			k := p[1]
			if keyByContact {
				k = p[0]
			}
			results[fmt.Sprint(k)] = res
			evs = append(evs, ev...)
		}
		return evs, nil
	})
	return results
}

func (s *store) contactTags(contactID int64) ([]map[string]any, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c := s.contacts[contactID]
	if c == nil {
		return nil, false
	}
	ids := make([]int64, 0, len(c.tags))
	for id := range c.tags {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	out := make([]map[string]any, 0, len(ids))
	for _, id := range ids {
		t := s.tags[id]
		st := map[string]any{"id": t.id, "name": t.name}
		if cat := s.categories[t.category]; cat != nil {
			st["category"] = cat.Name // SimpleTag.category is the category's name (a string)
		}
		out = append(out, map[string]any{"tag": st, "date_applied": keapTime(c.tags[id])})
	}
	return out, true
}

func (s *store) taggedContacts(tagID int64) ([]map[string]any, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	t := s.tags[tagID]
	if t == nil {
		return nil, false
	}
	ids := make([]int64, 0, len(t.contacts))
	for id := range t.contacts {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	out := make([]map[string]any, 0, len(ids))
	for _, id := range ids {
		c := s.contacts[id]
		bc := map[string]any{"id": c.id, "email": first(c.emails()), "first_name": c.str("given_name"), "last_name": c.str("family_name")}
		out = append(out, map[string]any{"contact": bc, "date_applied": keapTime(t.contacts[id])})
	}
	return out, true
}

func (s *store) listTags(name string, category int64) []map[string]any {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []map[string]any
	for _, id := range s.tagIDs {
		t := s.tags[id]
		if name != "" && !strings.EqualFold(t.name, name) {
			continue
		}
		if category != 0 && t.category != category {
			continue
		}
		out = append(out, s.renderTag(t))
	}
	return out
}

func (s *store) getTag(id int64) (map[string]any, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	t := s.tags[id]
	if t == nil {
		return nil, false
	}
	return s.renderTag(t), true
}

func (s *store) tagExists(id int64) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.tags[id] != nil
}
