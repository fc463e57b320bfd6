package keap

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"net/url"
	"strconv"
	"time"
)

// Page is one page of a v1 list: the items, Keap's total count, and the absolute next and
// previous links ("" at either end).
type Page[T any] struct {
	Items    []T
	Count    int
	Next     string
	Previous string
	// Bad are the items Keap listed that do not decode into T (an id that is not an integer, a
	// number beyond float64): one hostile record costs only itself, not its page.
	Bad []*ItemError
}

// listed is how many items the page held, decoded or not.
func (p *Page[T]) listed() int { return len(p.Items) + len(p.Bad) }

// listPage fetches one v1 list page whose items sit under key ("contacts", "tags", ...).
func listPage[T any](ctx context.Context, c *Client, r request, key string) (*Page[T], error) {
	var env map[string]json.RawMessage
	if err := c.do(ctx, r, &env); err != nil {
		return nil, err
	}
	p := &Page[T]{}
	if raw, ok := env[key]; ok {
		var items []json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil {
			return nil, &ResponseError{Method: r.method, Endpoint: r.endpoint, Status: 200, Err: fmt.Errorf("decode %s: %w", key, err)}
		}
		p.Items, p.Bad = decodeItems[T](r, items)
	}
	if raw, ok := env["count"]; ok {
		var n Number
		if err := json.Unmarshal(raw, &n); err == nil {
			p.Count = int(n)
		}
	}
	for name, dst := range map[string]*string{"next": &p.Next, "previous": &p.Previous} {
		if raw, ok := env[name]; ok {
			_ = json.Unmarshal(raw, dst) // null or a non-string: no link
		}
	}
	return p, nil
}

// decodeItems decodes a page's items one by one, so one that does not decode is reported alone.
func decodeItems[T any](r request, items []json.RawMessage) ([]T, []*ItemError) {
	out := make([]T, 0, len(items))
	var bad []*ItemError
	for _, it := range items {
		var v T
		if err := json.Unmarshal(it, &v); err != nil {
			bad = append(bad, newItemError(r, it, err))
			continue
		}
		out = append(out, v)
	}
	return out, bad
}

// walk yields every item of a v1 list, following next links from the first request. The walk
// ends at the first empty page or missing link, so a count that changes meanwhile does not
// matter. Offset paging over a changing set can skip or repeat records; for incremental sync
// use the Since iterators, which page by timestamp instead.
func walk[T any](ctx context.Context, c *Client, first request, key string) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		var zero T
		r := first
		seen := map[string]bool{}
		for {
			p, err := listPage[T](ctx, c, r, key)
			if err != nil {
				yield(zero, err)
				return
			}
			for _, it := range p.Items {
				if !yield(it, nil) {
					return
				}
			}
			if !yieldBad(p.Bad, yield) {
				return
			}
			if p.Next == "" || p.listed() == 0 {
				return
			}
			link, err := c.resolve(p.Next)
			if err == nil && seen[link] {
				err = fmt.Errorf("keap %s: next link repeats: %s", r.endpoint, p.Next)
			}
			if err != nil {
				yield(zero, err)
				return
			}
			seen[link] = true
			r.path, r.query = link, nil
		}
	}
}

// keyset walks a list ordered by modification time ascending, re-querying with since set to
// the newest timestamp seen instead of following offsets. A record modified during the walk
// moves behind the cursor and is met again later (at least once, never skipped), which offset
// paging cannot promise. Ties at the cursor are skipped by id; a page made entirely of one
// timestamp advances by offset. It assumes since is inclusive, as Keap documents ("date to
// start searching from") and the sandbox implements.
func keyset[T any](ctx context.Context, c *Client, since time.Time, build func(since time.Time, offset int) request,
	key string, stamp func(T) (time.Time, ID)) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		var zero T
		cursor, offset := since, 0
		atCursor := map[ID]bool{}
		for {
			r := build(cursor, offset)
			p, err := listPage[T](ctx, c, r, key)
			if err != nil {
				yield(zero, err)
				return
			}
			moved := false
			for _, it := range p.Items {
				ts, id := stamp(it)
				if ts.Equal(cursor) && atCursor[id] {
					continue
				}
				if !yield(it, nil) {
					return
				}
				if ts.After(cursor) {
					cursor, moved = ts, true
					clear(atCursor)
				}
				if ts.Equal(cursor) {
					atCursor[id] = true
				}
			}
			if !yieldBad(p.Bad, yield) {
				return
			}
			if p.Next == "" || p.listed() == 0 {
				return
			}
			if moved {
				offset = 0
			} else {
				offset += p.listed()
			}
		}
	}
}

// yieldBad reports a page's undecodable items as *ItemError values. The walk goes on if the
// consumer does: an ItemError is about one item, not the listing.
func yieldBad[T any](bad []*ItemError, yield func(T, error) bool) bool {
	var zero T
	for _, b := range bad {
		if !yield(zero, b) {
			return false
		}
	}
	return true
}

// pageQuery sets limit and offset when given.
func pageQuery(q url.Values, limit, offset int) {
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	if offset > 0 {
		q.Set("offset", strconv.Itoa(offset))
	}
}

// Collect drains an iterator into a slice, stopping at the first error.
func Collect[T any](seq iter.Seq2[T, error]) ([]T, error) {
	var out []T
	for it, err := range seq {
		if err != nil {
			return out, err
		}
		out = append(out, it)
	}
	return out, nil
}
