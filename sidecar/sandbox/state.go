package sandbox

import (
	"sort"
	"time"
)

// State is a dump of everything the sandbox holds, in the shapes the API serves.
type State struct {
	Now           time.Time        `json:"now"`
	Contacts      []map[string]any `json:"contacts"`
	Tags          []map[string]any `json:"tags"` // each with "contact_ids"
	Categories    []tagCategory    `json:"categories"`
	CustomFields  []customField    `json:"custom_fields"`
	Products      []product        `json:"products"`
	Orders        []map[string]any `json:"orders"`
	Subscriptions []map[string]any `json:"subscriptions"` // v2 shape, with modification_time
	Companies     []map[string]any `json:"companies"`     // v2 shape
	Hooks         []Hook           `json:"hooks"`
}

// Snapshot returns the whole state, consistent as of one instant.
func (s *Server) Snapshot() State {
	st := s.store.snapshot()
	st.Now = s.clock.Now()
	st.Hooks = s.hooks.list()
	return st
}

func (s *store) snapshot() State {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var st State
	for _, id := range s.contactIDs {
		st.Contacts = append(st.Contacts, s.contacts[id].render(allOptional()))
	}
	for _, id := range s.tagIDs {
		t := s.tags[id]
		m := s.renderTag(t)
		ids := make([]int64, 0, len(t.contacts))
		for c := range t.contacts {
			ids = append(ids, c)
		}
		sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
		m["contact_ids"] = ids
		st.Tags = append(st.Tags, m)
	}
	for _, c := range s.categories {
		st.Categories = append(st.Categories, *c)
	}
	sort.Slice(st.Categories, func(i, j int) bool { return st.Categories[i].ID < st.Categories[j].ID })
	st.CustomFields = append(st.CustomFields, s.fields...)
	for _, p := range s.products {
		st.Products = append(st.Products, *p)
	}
	sort.Slice(st.Products, func(i, j int) bool { return st.Products[i].ID < st.Products[j].ID })
	for _, id := range s.orderIDs {
		st.Orders = append(st.Orders, s.renderOrder(s.orders[id]))
	}
	for _, id := range s.subIDs {
		st.Subscriptions = append(st.Subscriptions, s.subs[id].v2())
	}
	for _, id := range s.companyIDs {
		st.Companies = append(st.Companies, s.companies[id].v2())
	}
	return st
}
