package sandbox

import (
	"net/http"
	"sort"
	"strconv"
	"strings"
)

// v2 renders [V2]'s Tag: a string id, the category named by its id alone (v1 nests the whole
// category) and the times v1 leaves out.
func (t *tag) v2() map[string]any {
	out := map[string]any{"id": strconv.FormatInt(t.id, 10), "name": t.name,
		"create_time": keapTime(t.created), "update_time": keapTime(t.updated)}
	if t.description != "" {
		out["description"] = t.description
	}
	if t.category != 0 {
		out["category"] = map[string]any{"id": strconv.FormatInt(t.category, 10)}
	}
	return out
}

// v2 renders [V2]'s TagCategory.
func (c *tagCategory) v2() map[string]any {
	out := map[string]any{"id": strconv.FormatInt(c.ID, 10), "name": c.Name,
		"create_time": keapTime(c.created), "update_time": keapTime(c.created)}
	if c.Description != "" {
		out["description"] = c.Description
	}
	return out
}

// listTagsV2 serves page_size/page_token paging, filter=tag_ids==1,2,3 (swagger.yml documents
// it; the 2025-11-05 document leaves it out) and order_by=name|create_time|update_time
// [asc|desc] (id order by default). The sandbox refuses the other filters [V2] documents, which
// keapsync does not send.
func (a *restAPI) listTagsV2(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	size, offset, err := v2Page(q)
	if err != nil {
		return err
	}
	ids, err := idsFilter(q.Get("filter"), "tag_ids")
	if err != nil {
		return err
	}
	field, dir, _ := strings.Cut(q.Get("order_by"), " ")
	if field != "" && field != "name" && field != "create_time" && field != "update_time" {
		return badRequest("Invalid order_by: " + q.Get("order_by"))
	}
	a.store.mu.RLock()
	defer a.store.mu.RUnlock()
	all := make([]*tag, 0, len(a.store.tagIDs))
	for _, id := range a.store.tagIDs {
		if ids == nil || ids[id] {
			all = append(all, a.store.tags[id])
		}
	}
	field, desc := a.store.listOrder(field, dir, "update_time")
	sort.SliceStable(all, func(i, j int) bool {
		x, y := all[i], all[j]
		switch {
		case field == "name" && x.name != y.name:
			return (x.name < y.name) != desc
		case field == "create_time" && !x.created.Equal(y.created):
			return x.created.Before(y.created) != desc
		case field == "update_time" && !x.updated.Equal(y.updated):
			return x.updated.Before(y.updated) != desc
		}
		return (x.id < y.id) != desc
	})
	writeV2Page(w, "tags", all, size, offset, (*tag).v2)
	return nil
}

// listTagCategoriesV2 serves GET /v2/tags/categories in id order, paged; the sandbox refuses
// the filters and orders [V2] documents, which keapsync does not send.
func (a *restAPI) listTagCategoriesV2(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	size, offset, err := v2Page(q)
	if err != nil {
		return err
	}
	if q.Get("filter") != "" || q.Get("order_by") != "" {
		return badRequest("Invalid filter or order_by: the sandbox lists tag categories in id order only")
	}
	a.store.mu.RLock()
	defer a.store.mu.RUnlock()
	all := make([]*tagCategory, 0, len(a.store.categories))
	for _, c := range a.store.categories {
		all = append(all, c)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].ID < all[j].ID })
	writeV2Page(w, "tag_categories", all, size, offset, (*tagCategory).v2)
	return nil
}
