package sandbox

import (
	"sort"
	"strings"
	"time"
)

// contactQuery is a parsed GET /v1/contacts.
type contactQuery struct {
	email, given, family string
	since, until         time.Time // since inclusive (exclusive under SinceExclusive), until exclusive, on last_updated
	sinceExclusive       bool
	order                string
	descending           bool
	page                 page
}

// listContacts returns one page and the number of matches. Without since/until/filters and in
// id order it slices the id index directly, which keeps 1000-contact pages cheap.
func (s *store) listContacts(q contactQuery) ([]*contact, int) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	filtered := q.email != "" || q.given != "" || q.family != "" || !q.since.IsZero() || !q.until.IsZero()
	if !filtered && (q.order == "" || q.order == "id") {
		n := len(s.contactIDs)
		lo, hi := q.page.bounds(n)
		out := make([]*contact, 0, hi-lo)
		for i := lo; i < hi; i++ {
			idx := i
			if q.descending {
				idx = n - 1 - i
			}
			out = append(out, s.contacts[s.contactIDs[idx]])
		}
		return out, n
	}
	var all []*contact
	for _, id := range s.contactIDs {
		c := s.contacts[id]
		if q.matches(c) {
			all = append(all, c)
		}
	}
	sort.SliceStable(all, func(i, j int) bool {
		less, equal := compareContacts(all[i], all[j], q.order)
		if equal {
			return all[i].id < all[j].id // ties: id ascending, in both directions
		}
		return less != q.descending
	})
	lo, hi := q.page.bounds(len(all))
	return all[lo:hi], len(all)
}

func (q contactQuery) matches(c *contact) bool {
	if q.email != "" && !containsStr(c.emails(), strings.ToLower(q.email)) {
		return false
	}
	if q.given != "" && !strings.EqualFold(c.str("given_name"), q.given) {
		return false
	}
	if q.family != "" && !strings.EqualFold(c.str("family_name"), q.family) {
		return false
	}
	if !q.since.IsZero() && (c.updated.Before(q.since) || (q.sinceExclusive && c.updated.Equal(q.since))) {
		return false
	}
	if !q.until.IsZero() && !c.updated.Before(q.until) {
		return false
	}
	return true
}

func compareContacts(a, b *contact, order string) (less, equal bool) {
	cmpStr := func(x, y string) (bool, bool) {
		x, y = strings.ToLower(x), strings.ToLower(y)
		return x < y, x == y
	}
	switch order {
	case "date_created":
		return a.created.Before(b.created), a.created.Equal(b.created)
	case "last_updated":
		return a.updated.Before(b.updated), a.updated.Equal(b.updated)
	case "name":
		return cmpStr(a.str("family_name")+"\x00"+a.str("given_name"), b.str("family_name")+"\x00"+b.str("given_name"))
	case "firstName":
		return cmpStr(a.str("given_name"), b.str("given_name"))
	case "email":
		return cmpStr(first(a.emails()), first(b.emails()))
	}
	return a.id < b.id, a.id == b.id
}

func first(l []string) string {
	if len(l) == 0 {
		return ""
	}
	return l[0]
}

func (s *store) getContact(id int64) (*contact, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c, ok := s.contacts[id]
	return c, ok
}
