package keap

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Tag is a v1 tag (a "contact group" in Keap's events). Tags carry no timestamps in v1.
type Tag struct {
	ID          ID              `json:"id"`
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Category    *TagCategory    `json:"category"`
	Raw         json.RawMessage `json:"-"`
}

// UnmarshalJSON keeps the raw JSON.
func (t *Tag) UnmarshalJSON(b []byte) error {
	type plain Tag
	var p plain
	raw, err := withRaw(b, &p)
	if err != nil {
		return fmt.Errorf("tag: %w", err)
	}
	*t = Tag(p)
	t.Raw = raw
	return nil
}

// TagCategory groups tags.
type TagCategory struct {
	ID          ID     `json:"id,omitzero"`
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
}

// UnmarshalJSON accepts the object and, as a contact's tag list has it, the bare category name.
func (c *TagCategory) UnmarshalJSON(b []byte) error {
	if s, quoted, ok, err := unquote(b); err != nil || !ok || quoted {
		*c = TagCategory{Name: s}
		return err
	}
	type plain TagCategory
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return fmt.Errorf("tag category: %w", err)
	}
	*c = TagCategory(p)
	return nil
}

// ContactTag is a tag applied to a contact (GET /v1/contacts/{id}/tags).
type ContactTag struct {
	Tag         Tag             `json:"tag"`
	DateApplied Time            `json:"date_applied"`
	Raw         json.RawMessage `json:"-"`
}

// UnmarshalJSON keeps the raw JSON.
func (t *ContactTag) UnmarshalJSON(b []byte) error {
	type plain ContactTag
	var p plain
	raw, err := withRaw(b, &p)
	if err != nil {
		return fmt.Errorf("contact tag: %w", err)
	}
	*t = ContactTag(p)
	t.Raw = raw
	return nil
}

// TaggedContact is a contact carrying a tag (GET /v1/tags/{id}/contacts).
type TaggedContact struct {
	Contact struct {
		ID        ID     `json:"id"`
		Email     string `json:"email"`
		FirstName string `json:"first_name"`
		LastName  string `json:"last_name"`
	} `json:"contact"`
	DateApplied Time            `json:"date_applied"`
	Raw         json.RawMessage `json:"-"`
}

// UnmarshalJSON keeps the raw JSON.
func (t *TaggedContact) UnmarshalJSON(b []byte) error {
	type plain TaggedContact
	var p plain
	raw, err := withRaw(b, &p)
	if err != nil {
		return fmt.Errorf("tagged contact: %w", err)
	}
	*t = TaggedContact(p)
	t.Raw = raw
	return nil
}

// Tag application results, per id.
const (
	TagSuccess         = "SUCCESS"
	TagDuplicate       = "DUPLICATE" // already applied: success for a sync
	TagContactNotFound = "CONTACT_NOT_FOUND"
	TagNotFound        = "TAG_ID_NOT_FOUND"
)

// TagResults maps each id of an apply call (tag ids on the contact side, contact ids on the tag
// side) to Keap's result.
type TagResults map[ID]string

// UnmarshalJSON accepts the object keyed by id Keap sends ({"12":"SUCCESS"}), v2's
// {"results":{...}}, and the array of entries [V1] declares ([{"key":12,"value":"SUCCESS"}]).
func (r *TagResults) UnmarshalJSON(b []byte) error {
	out := TagResults{}
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, jsonNull):
	case len(b) > 0 && b[0] == '[':
		var entries []struct {
			Key   ID     `json:"key"`
			Value string `json:"value"`
		}
		if err := json.Unmarshal(b, &entries); err != nil {
			return fmt.Errorf("tag results: %w", err)
		}
		for _, e := range entries {
			out[e.Key] = e.Value
		}
	default:
		var m map[string]json.RawMessage
		if err := json.Unmarshal(b, &m); err != nil {
			return fmt.Errorf("tag results: %w", err)
		}
		if inner, ok := m["results"]; ok && len(m) == 1 {
			return r.UnmarshalJSON(inner)
		}
		for k, v := range m {
			id, err := strconv.ParseInt(strings.TrimSpace(k), 10, 64)
			if err != nil {
				return fmt.Errorf("tag results: key %q is not an id", k)
			}
			var s string
			if err := json.Unmarshal(v, &s); err != nil {
				return fmt.Errorf("tag results: %s: %w", k, err)
			}
			out[ID(id)] = s
		}
	}
	*r = out
	return nil
}

// Failed returns the ids whose result is neither SUCCESS nor DUPLICATE.
func (r TagResults) Failed() map[ID]string {
	out := map[ID]string{}
	for id, s := range r {
		if s != TagSuccess && s != TagDuplicate {
			out[id] = s
		}
	}
	return out
}

// TagQuery filters GET /v1/tags.
type TagQuery struct {
	Name          string
	Category      ID
	Limit, Offset int
}

func (q TagQuery) values() url.Values {
	v := url.Values{}
	if q.Name != "" {
		v.Set("name", q.Name)
	}
	if q.Category != 0 {
		v.Set("category", q.Category.String())
	}
	pageQuery(v, q.Limit, q.Offset)
	return v
}

// ListTags fetches one page of tags.
func (c *Client) ListTags(ctx context.Context, q TagQuery) (*Page[Tag], error) {
	return listPage[Tag](ctx, c, c.get("/v1/tags", "/v1/tags", q.values()), "tags")
}

// Tags yields every tag matching q.
func (c *Client) Tags(ctx context.Context, q TagQuery) iter.Seq2[Tag, error] {
	return walk[Tag](ctx, c, c.get("/v1/tags", "/v1/tags", q.values()), "tags")
}

// GetTag fetches one tag.
func (c *Client) GetTag(ctx context.Context, id ID) (*Tag, error) {
	var out Tag
	if err := c.do(ctx, c.get("/v1/tags/{id}", fmt.Sprintf("/v1/tags/%d", id), nil), &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// TagInput creates a tag.
type TagInput struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	CategoryID  ID     `json:"-"`
}

// CreateTag creates a tag. Not retried on network errors (it would make a second tag).
func (c *Client) CreateTag(ctx context.Context, in TagInput) (*Tag, error) {
	body := map[string]any{"name": in.Name}
	if in.Description != "" {
		body["description"] = in.Description
	}
	if in.CategoryID != 0 {
		body["category"] = map[string]ID{"id": in.CategoryID}
	}
	var out Tag
	if err := c.do(ctx, request{method: http.MethodPost, endpoint: "/v1/tags", path: "/v1/tags", body: body}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// CreateTagCategory creates a tag category. Not retried on network errors.
func (c *Client) CreateTagCategory(ctx context.Context, name, description string) (*TagCategory, error) {
	var out TagCategory
	r := request{method: http.MethodPost, endpoint: "/v1/tags/categories", path: "/v1/tags/categories",
		body: TagCategory{Name: name, Description: description}}
	if err := c.do(ctx, r, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ContactTags yields the tags applied to a contact.
func (c *Client) ContactTags(ctx context.Context, contactID ID) iter.Seq2[ContactTag, error] {
	return walk[ContactTag](ctx, c, c.get("/v1/contacts/{id}/tags", fmt.Sprintf("/v1/contacts/%d/tags", contactID), nil), "tags")
}

// TaggedContacts yields the contacts that carry a tag.
func (c *Client) TaggedContacts(ctx context.Context, tagID ID) iter.Seq2[TaggedContact, error] {
	return walk[TaggedContact](ctx, c, c.get("/v1/tags/{id}/contacts", fmt.Sprintf("/v1/tags/%d/contacts", tagID), nil), "contacts")
}

// Applying a tag twice answers DUPLICATE and changes nothing, so the apply POSTs are
// idempotent and retried like GETs.

// ApplyTags applies tags to one contact; the results are keyed by tag id.
func (c *Client) ApplyTags(ctx context.Context, contactID ID, tagIDs ...ID) (TagResults, error) {
	var out TagResults
	r := request{method: http.MethodPost, endpoint: "/v1/contacts/{id}/tags", path: fmt.Sprintf("/v1/contacts/%d/tags", contactID),
		body: map[string][]ID{"tagIds": tagIDs}, idempotent: true}
	if err := c.do(ctx, r, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// RemoveTags removes tags from one contact (removing a tag not applied is no error).
func (c *Client) RemoveTags(ctx context.Context, contactID ID, tagIDs ...ID) error {
	if len(tagIDs) == 1 {
		return c.do(ctx, request{method: http.MethodDelete, endpoint: "/v1/contacts/{id}/tags/{tagId}",
			path: fmt.Sprintf("/v1/contacts/%d/tags/%d", contactID, tagIDs[0]), idempotent: true}, nil)
	}
	// [V1] declares ids here as one comma-separated string.
	q := url.Values{"ids": {joinIDs(tagIDs)}}
	return c.do(ctx, request{method: http.MethodDelete, endpoint: "/v1/contacts/{id}/tags",
		path: fmt.Sprintf("/v1/contacts/%d/tags", contactID), query: q, idempotent: true}, nil)
}

// ApplyTagToContacts applies one tag to many contacts; the results are keyed by contact id.
func (c *Client) ApplyTagToContacts(ctx context.Context, tagID ID, contactIDs ...ID) (TagResults, error) {
	var out TagResults
	r := request{method: http.MethodPost, endpoint: "/v1/tags/{id}/contacts", path: fmt.Sprintf("/v1/tags/%d/contacts", tagID),
		body: map[string][]ID{"ids": contactIDs}, idempotent: true}
	if err := c.do(ctx, r, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// RemoveTagFromContacts removes one tag from many contacts.
func (c *Client) RemoveTagFromContacts(ctx context.Context, tagID ID, contactIDs ...ID) error {
	if len(contactIDs) == 1 {
		return c.do(ctx, request{method: http.MethodDelete, endpoint: "/v1/tags/{id}/contacts/{contactId}",
			path: fmt.Sprintf("/v1/tags/%d/contacts/%d", tagID, contactIDs[0]), idempotent: true}, nil)
	}
	// [V1] declares ids here as an exploded int64 array: ids=1&ids=2.
	q := url.Values{}
	for _, id := range contactIDs {
		q.Add("ids", id.String())
	}
	return c.do(ctx, request{method: http.MethodDelete, endpoint: "/v1/tags/{id}/contacts",
		path: fmt.Sprintf("/v1/tags/%d/contacts", tagID), query: q, idempotent: true}, nil)
}

func joinIDs(ids []ID) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = id.String()
	}
	return strings.Join(parts, ",")
}

// TagsByID yields the tags ids names, each in v1's shape (Raw as GET /v1/tags/{id} gives it),
// read through v2, which lists tags by id (filter tag_ids, IDsPerCall a call) where v1 lists
// only the whole set. v2's tag names its category by id alone; the name and description v1
// nests in the tag come from one listing of the categories, asked for at the first tag that has
// one. The values are moved as Keap sent them, byte for byte (a name that is not valid UTF-8
// stays so, for ingest to record what it alters). A tag whose category that listing lacks
// (made in between) yields an error of ErrBadResponse, so that the caller reads the tags
// another way.
func (c *Client) TagsByID(ctx context.Context, ids []ID) iter.Seq2[Tag, error] {
	return func(yield func(Tag, error) bool) {
		if len(ids) == 0 {
			return // no ids is no filter to v2: it would list every tag
		}
		var categories map[ID]v1Category
		for o, err := range c.Objects(ctx, "/v2/tags", ObjectQuery{IDs: ids, IDsFilter: "tag_ids", PageSize: 1000}) {
			if err != nil {
				yield(Tag{}, err)
				return
			}
			var v2 struct {
				Name        json.RawMessage `json:"name"`
				Description json.RawMessage `json:"description"`
				Category    *struct {
					ID ID `json:"id"`
				} `json:"category"`
			}
			if err := json.Unmarshal(o.Raw, &v2); err != nil {
				yield(Tag{}, unusable(o, "/v2/tags", err))
				return
			}
			v1 := v1Tag{ID: o.ID, Name: v2.Name, Description: v2.Description}
			if v2.Category != nil {
				if categories == nil {
					if categories, err = c.tagCategories(ctx); err != nil {
						yield(Tag{}, err)
						return
					}
				}
				cat, ok := categories[v2.Category.ID]
				if !ok {
					yield(Tag{}, unusable(o, "/v2/tags", fmt.Errorf("its category %s is not among those Keap listed", v2.Category.ID)))
					return
				}
				v1.Category = &cat
			}
			raw, err := json.Marshal(v1)
			if err != nil {
				yield(Tag{}, unusable(o, "/v2/tags", err))
				return
			}
			var t Tag
			if err := json.Unmarshal(raw, &t); err != nil {
				yield(Tag{}, unusable(o, "/v2/tags", err))
				return
			}
			if !yield(t, nil) {
				return
			}
		}
	}
}

// unusable is the error for an object of a v2 listing at endpoint that cannot be given in
// v1's shape.
func unusable(o Object, endpoint string, err error) error {
	return &ResponseError{Method: http.MethodGet, Endpoint: endpoint, Status: http.StatusOK, Body: o.Raw,
		Err: fmt.Errorf("%s: %w", o.ID, err)}
}

// v1Tag and v1Category are [V1]'s Tag and TagCategory as TagsByID builds them from v2's, each
// value as v2 gave it (absent stays absent).
type (
	v1Tag struct {
		ID          ID              `json:"id"`
		Name        json.RawMessage `json:"name,omitempty"`
		Description json.RawMessage `json:"description,omitempty"`
		Category    *v1Category     `json:"category,omitempty"`
	}
	v1Category struct {
		ID          ID              `json:"id"`
		Name        json.RawMessage `json:"name,omitempty"`
		Description json.RawMessage `json:"description,omitempty"`
	}
)

// tagCategories lists every tag category (v2) in v1's shape, by id.
func (c *Client) tagCategories(ctx context.Context) (map[ID]v1Category, error) {
	out := map[ID]v1Category{}
	for o, err := range c.Objects(ctx, "/v2/tags/categories", ObjectQuery{PageSize: 1000}) {
		if err != nil {
			return nil, err
		}
		cat := v1Category{ID: o.ID}
		if err := json.Unmarshal(o.Raw, &cat); err != nil {
			return nil, unusable(o, "/v2/tags/categories", err)
		}
		out[o.ID] = cat
	}
	return out, nil
}
