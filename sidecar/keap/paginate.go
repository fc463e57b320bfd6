package keap

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"net/url"
	"slices"
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

// sinceWindow is how far before the cursor keyset re-queries. Keap does not document whether
// `since` is inclusive, nor the precision of its stamps (FACTS §7): re-reading one second before
// the cursor sees every record stamped at the cursor under both answers, with stamps of whole
// seconds as well as milliseconds.
const sinceWindow = time.Second

// keyset walks a list ordered by modification time ascending (a documented order), re-querying
// with since set a little before the newest timestamp seen instead of following offsets. A
// record modified during the walk moves behind the cursor and is met again later (at least once,
// never skipped), which offset paging cannot promise. Records already yielded within the window
// are skipped by id; a page that brings nothing past the cursor (a run of records sharing one
// stamp, a bulk edit) advances by offset.
func keyset[T any](ctx context.Context, c *Client, since time.Time, build func(since time.Time, offset int) request,
	key string, stamp func(T) (time.Time, ID)) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		var zero T
		cursor, offset := since, 0
		seen := map[ID]time.Time{} // yielded records stamped within the window before the cursor
		for {
			from := cursor
			if !from.IsZero() {
				from = from.Add(-sinceWindow)
			}
			r := build(from, offset)
			p, err := listPage[T](ctx, c, r, key)
			if err != nil {
				yield(zero, err)
				return
			}
			moved := false
			for _, it := range p.Items {
				ts, id := stamp(it)
				if at, ok := seen[id]; (ok && at.Equal(ts)) || (!since.IsZero() && ts.Before(since)) {
					continue // yielded already, or inside the window but before what was asked
				}
				if !yield(it, nil) {
					return
				}
				if ts.After(cursor) {
					cursor, moved = ts, true
				}
				seen[id] = ts
			}
			if !yieldBad(p.Bad, yield) {
				return
			}
			if p.Next == "" || p.listed() == 0 {
				return
			}
			if moved {
				offset = 0
				for id, at := range seen {
					if at.Before(cursor.Add(-sinceWindow)) {
						delete(seen, id)
					}
				}
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

// newestFirst walks a list Keap documents as sorted newest first by a modification stamp (v1
// orders with order=update_date), by offset, and yields every record stamped at or after since
// (all of them for a zero since) at least once, whichever way the list really runs:
//   - It stops early only once the list has shown it runs newest first (a record older than
//     since comes after a strictly newer one); an oldest-first list is walked to its end.
//   - Each page is requested overlapping the previous one; finding the previous page's last
//     records in it proves nothing was skipped when records were added, changed or deleted
//     meanwhile (a change moves a record to the top, where the next sweep meets it). If none
//     is found the walk starts over, skipping what it already yielded.
func newestFirst[T any](ctx context.Context, c *Client, since time.Time, limit int, build func(offset int) request,
	key string, stamp func(T) (time.Time, ID)) iter.Seq2[T, error] {
	const restarts = 3
	overlap := max(1, min(50, limit/10))
	ahead := PrefetchFrom(ctx)
	if !since.IsZero() || limit <= overlap {
		ahead = 1 // a walk that may stop early would pay for pages it never reads
	}
	return func(yield func(T, error) bool) {
		var zero T
		yielded := map[ID]bool{}
		ctx, stop := context.WithCancel(ctx)
		defer stop()
		for attempt := 0; ; attempt++ {
			offset := 0
			var anchors []ID // the previous page's last ids, newest last
			var newest time.Time
			haveNewest := false
			lost := false
			pf := prefetcher[T]{ctx: ctx, c: c, build: build, key: key, ahead: ahead, step: limit - overlap}
			for {
				p, err := pf.page(offset)
				if err != nil {
					yield(zero, err)
					return
				}
				items := p.Items
				if len(anchors) > 0 {
					at := -1
					for i, it := range items {
						_, id := stamp(it)
						if slices.Contains(anchors, id) {
							at = i
						}
					}
					if at < 0 {
						lost = true
						break
					}
					items = items[at+1:]
				}
				for _, it := range items {
					ts, id := stamp(it)
					if !since.IsZero() && ts.Before(since) && haveNewest && newest.After(ts) {
						return // newest first, proven: everything further is older still
					}
					if !haveNewest || ts.After(newest) {
						newest, haveNewest = ts, true
					}
					if yielded[id] || (!since.IsZero() && ts.Before(since)) {
						continue
					}
					yielded[id] = true
					if !yield(it, nil) {
						return
					}
				}
				if !yieldBad(p.Bad, yield) {
					return
				}
				// A short page is the last (Keap may still send a next link past the end).
				if p.Next == "" || p.listed() < limit {
					return
				}
				anchors = anchors[:0]
				for _, it := range p.Items[max(0, len(p.Items)-overlap):] {
					_, id := stamp(it)
					anchors = append(anchors, id)
				}
				offset += p.listed() - len(anchors)
				if p.listed() <= overlap {
					offset += len(anchors) // a tiny page: no room to overlap
					anchors = anchors[:0]
				}
			}
			pf.drop()
			if lost && attempt+1 >= restarts {
				yield(zero, fmt.Errorf("keap %s: the listing kept shifting under the walk; giving up after %d attempts", key, restarts))
				return
			}
		}
	}
}

// prefetcher fetches the pages of an offset walk ahead of it: while pages are full, page k sits at
// offset k*step (a full page less its overlap), so the next ahead-1 offsets are requested at once
// and the walk finds them ready. A page asked for at another offset (a short page, a restart) is
// fetched then; pages fetched ahead and never asked for cost only their calls.
type prefetcher[T any] struct {
	ctx    context.Context
	c      *Client
	build  func(offset int) request
	key    string
	ahead  int
	step   int
	total  int // the listing's count, once a page has said it
	flight map[int]chan pageResult[T]
}

type pageResult[T any] struct {
	p   *Page[T]
	err error
}

func (f *prefetcher[T]) start(offset int) chan pageResult[T] {
	if ch, ok := f.flight[offset]; ok {
		return ch
	}
	if f.flight == nil {
		f.flight = map[int]chan pageResult[T]{}
	}
	ch := make(chan pageResult[T], 1)
	f.flight[offset] = ch
	go func() {
		p, err := listPage[T](f.ctx, f.c, f.build(offset), f.key)
		ch <- pageResult[T]{p, err}
	}()
	return ch
}

func (f *prefetcher[T]) page(offset int) (*Page[T], error) {
	ch := f.start(offset)
	for k := 1; k < f.ahead && f.total > 0 && offset+k*f.step < f.total; k++ {
		f.start(offset + k*f.step)
	}
	r := <-ch
	delete(f.flight, offset)
	if r.err == nil && r.p.Count > 0 {
		f.total = r.p.Count
		for k := 1; k < f.ahead && offset+k*f.step < f.total; k++ {
			f.start(offset + k*f.step)
		}
	}
	return r.p, r.err
}

// drop forgets the pages fetched ahead (a restart asks for them again, fresh).
func (f *prefetcher[T]) drop() { f.flight = nil }

type prefetchKey struct{}

// WithPrefetch lets an offset walk over a listing (orders newest first) fetch up to n pages at
// once; the calls still wait on the budget one by one. Walks that may stop early ignore it.
func WithPrefetch(ctx context.Context, n int) context.Context {
	return context.WithValue(ctx, prefetchKey{}, n)
}

// PrefetchFrom returns the pages an offset walk may fetch at once under ctx (1 unless set).
func PrefetchFrom(ctx context.Context) int {
	if n, ok := ctx.Value(prefetchKey{}).(int); ok && n > 1 {
		return n
	}
	return 1
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
