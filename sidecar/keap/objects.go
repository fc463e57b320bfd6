package keap

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Object is a v2 object read generically: its id, Keap's clock and the JSON as Keap sent it.
// keapsync reads types that need no code of their own this way (companies), and v1 resources of
// the same shape (notes): a path under /v1/ is one (see isV1).
type Object struct {
	ID               ID              `json:"id"` // a string in v2
	UpdateTime       Time            `json:"update_time"`
	ModificationTime Time            `json:"modification_time"` // tasks' name for the same clock
	LastUpdatedTime  Time            `json:"last_updated_time"` // opportunities'
	UpdatedTime      Time            `json:"updated_time"`      // opportunity stages'
	LastUpdated      Time            `json:"last_updated"`      // v1's name for it (notes)
	Raw              json.RawMessage `json:"-"`
}

// Modified is Keap's clock for the object, whichever name it goes by.
func (o Object) Modified() time.Time {
	for _, t := range []Time{o.UpdateTime, o.ModificationTime, o.LastUpdatedTime, o.LastUpdated} {
		if !t.Time.IsZero() {
			return t.Time
		}
	}
	return o.UpdatedTime.Time
}

// isV1 says path is a v1 resource: listed by limit and offset with next links, no filter by
// update time, patched with the properties in the body (v1 PATCHes of such resources take no
// update_mask).
func isV1(path string) bool { return strings.HasPrefix(path, "/v1/") }

// UnmarshalJSON decodes liberally and keeps the raw JSON.
func (o *Object) UnmarshalJSON(b []byte) error {
	type plain Object
	var p plain
	raw, err := withRaw(b, &p)
	if err != nil {
		return fmt.Errorf("object: %w", err)
	}
	*o = Object(p)
	o.Raw = raw
	return nil
}

// ObjectQuery lists a v2 collection.
type ObjectQuery struct {
	Since time.Time // filter=since_time==…: updated at or after (zero: everything)
	// SinceFilter names the filter Since sets where the collection calls it otherwise
	// (orders: modified_since_time); "" is since_time.
	SinceFilter string
	// IDs, when set, lists only these objects (filter=ids==1,2,3), IDsPerCall of them a call.
	IDs []ID
	// IDsFilter names the filter IDs sets where the collection calls it otherwise (products:
	// product_ids); "" is ids.
	IDsFilter string
	// OrderBy is the listing's order_by, e.g. "update_time desc" ("": Keap's default order).
	OrderBy   string
	Fields    []string
	PageSize  int // at most 1000
	PageToken string
}

// IDsPerCall bounds the ids one listing names, to keep its URL short (Keap's gateway refuses
// long request lines): 500 ids of 7 digits are about 4 kB.
const IDsPerCall = 500

func (q ObjectQuery) values() url.Values {
	v := url.Values{}
	var filter []string
	if !q.Since.IsZero() {
		name := q.SinceFilter
		if name == "" {
			name = "since_time"
		}
		filter = append(filter, name+"=="+q.Since.UTC().Format("2006-01-02T15:04:05.000Z"))
	}
	if len(q.IDs) > 0 {
		ids := make([]string, len(q.IDs))
		for i, id := range q.IDs {
			ids[i] = id.String()
		}
		name := q.IDsFilter
		if name == "" {
			name = "ids"
		}
		filter = append(filter, name+"=="+strings.Join(ids, ","))
	}
	if len(filter) > 0 {
		v.Set("filter", strings.Join(filter, ";"))
	}
	if len(q.Fields) > 0 {
		v.Set("fields", strings.Join(q.Fields, ","))
	}
	if q.OrderBy != "" {
		v.Set("order_by", q.OrderBy)
	}
	if q.PageSize > 0 {
		v.Set("page_size", strconv.Itoa(q.PageSize))
	}
	if q.PageToken != "" {
		v.Set("page_token", q.PageToken)
	}
	return v
}

// collection is the v2 list envelope: the items sit under the collection's name, the path's
// last segment unless Keap names it otherwise.
func collection(path string) string {
	if key, ok := collectionKeys[path]; ok {
		return key
	}
	return path[strings.LastIndex(path, "/")+1:]
}

// collectionKeys are the envelopes not named after their path's last segment.
var collectionKeys = map[string]string{"/v2/tags/categories": "tag_categories"}

// ListObjects fetches one page of the v2 collection at path (e.g. "/v2/companies").
func (c *Client) ListObjects(ctx context.Context, path string, q ObjectQuery) (*PageV2[Object], error) {
	var env map[string]json.RawMessage
	r := c.get(path, path, q.values())
	if err := c.do(ctx, r, &env); err != nil {
		return nil, err
	}
	var items []json.RawMessage
	if raw, ok := env[collection(path)]; ok && string(raw) != "null" {
		if err := json.Unmarshal(raw, &items); err != nil {
			return nil, fmt.Errorf("keap GET %s: %s is not a list: %w", path, collection(path), err)
		}
	}
	p := &PageV2[Object]{}
	if raw, ok := env["next_page_token"]; ok {
		_ = json.Unmarshal(raw, &p.NextPageToken)
	}
	p.Items, p.Bad = decodeItems[Object](r, items)
	return p, nil
}

// Objects yields every object of the collection matching q, following page tokens (v2) or
// next links (v1, which can filter by neither update time nor fields: q.Since must be zero).
func (c *Client) Objects(ctx context.Context, path string, q ObjectQuery) iter.Seq2[Object, error] {
	if isV1(path) {
		if !q.Since.IsZero() {
			return func(yield func(Object, error) bool) {
				yield(Object{}, fmt.Errorf("keap GET %s: a v1 listing cannot filter by update time", path))
			}
		}
		v := url.Values{}
		if q.PageSize > 0 {
			v.Set("limit", strconv.Itoa(q.PageSize))
		}
		return walk[Object](ctx, c, c.get(path, path, v), collection(path))
	}
	return func(yield func(Object, error) bool) {
		if len(q.IDs) <= IDsPerCall {
			c.objectPages(ctx, path, q, yield)
			return
		}
		for chunk := range slices.Chunk(q.IDs, IDsPerCall) {
			cq := q
			cq.IDs = chunk
			if !c.objectPages(ctx, path, cq, yield) {
				return
			}
		}
	}
}

// objectPages yields the objects of one v2 listing, page after page; false: it stopped early
// (the consumer's choice, or an error yielded).
func (c *Client) objectPages(ctx context.Context, path string, q ObjectQuery, yield func(Object, error) bool) bool {
	seen := map[string]bool{}
	for {
		p, err := c.ListObjects(ctx, path, q)
		if err != nil {
			yield(Object{}, err)
			return false
		}
		for _, o := range p.Items {
			if !yield(o, nil) {
				return false
			}
		}
		if !yieldBad(p.Bad, yield) {
			return false
		}
		if p.NextPageToken == "" || len(p.Items)+len(p.Bad) == 0 {
			return true
		}
		if seen[p.NextPageToken] {
			yield(Object{}, fmt.Errorf("keap GET %s: page token repeats", path))
			return false
		}
		seen[p.NextPageToken] = true
		q.PageToken = p.NextPageToken
	}
}

// GetObject fetches one object of the collection at path.
func (c *Client) GetObject(ctx context.Context, path string, id ID, fields ...string) (*Object, error) {
	var q url.Values
	if len(fields) > 0 {
		q = url.Values{"fields": {strings.Join(fields, ",")}}
	}
	var out Object
	if err := c.do(ctx, c.get(path+"/{id}", fmt.Sprintf("%s/%d", path, id), q), &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// CreateObject creates an object in the collection at path. Not retried on network errors.
func (c *Client) CreateObject(ctx context.Context, path string, body any) (*Object, error) {
	var out Object
	if err := c.do(ctx, request{method: http.MethodPost, endpoint: path, path: path, body: body}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// UpdateObject patches the properties updateMask names (all in body when none). A v1 resource
// takes no mask: it changes the properties the body holds, so body must hold only those.
func (c *Client) UpdateObject(ctx context.Context, path string, id ID, body any, updateMask ...string) (*Object, error) {
	q := url.Values{}
	if len(updateMask) > 0 && !isV1(path) {
		q["update_mask"] = updateMask
	}
	var out Object
	r := request{method: http.MethodPatch, endpoint: path + "/{id}", path: fmt.Sprintf("%s/%d", path, id), query: q, body: body, idempotent: true}
	if err := c.do(ctx, r, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// UpdateObjectAt patches the object at path, whose template endpoint names it for the budgets
// and metrics (e.g. "/v2/contacts/{parent_id}/notes/{id}"), with the properties updateMask names.
func (c *Client) UpdateObjectAt(ctx context.Context, endpoint, path string, body any, updateMask ...string) (*Object, error) {
	q := url.Values{}
	if len(updateMask) > 0 {
		q["update_mask"] = updateMask
	}
	var out Object
	r := request{method: http.MethodPatch, endpoint: endpoint, path: path, query: q, body: body, idempotent: true}
	if err := c.do(ctx, r, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteObject deletes an object of the collection at path.
func (c *Client) DeleteObject(ctx context.Context, path string, id ID) error {
	r := request{method: http.MethodDelete, endpoint: path + "/{id}", path: fmt.Sprintf("%s/%d", path, id), idempotent: true}
	return c.do(ctx, r, nil)
}
