package ingest

import (
	"context"
	"errors"
	"iter"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

// pagesOf lists n pages of one record each, page i modified at minute i.
func pagesOf(n int) func(ctx context.Context, out chan<- numberedPage) error {
	base := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	return func(ctx context.Context, out chan<- numberedPage) error {
		for i := range n {
			select {
			case out <- numberedPage{seq: i, records: []record{{id: int64(i), modified: base.Add(time.Duration(i) * time.Minute)}}}:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	}
}

// slowEven applies even pages slower than odd ones, so pages finish out of listing order.
func slowEven(fail int64) func(ctx context.Context, page []record) error {
	return func(ctx context.Context, page []record) error {
		if page[0].id%2 == 0 {
			time.Sleep(3 * time.Millisecond)
		}
		if page[0].id == fail {
			return errors.New("page refused")
		}
		return ctx.Err()
	}
}

// The checkpoint (done) sees pages in listing order however they finish, and never a page at
// or after one that failed: resuming from it can skip nothing.
func TestApplyInOrderReportsPagesInListingOrder(t *testing.T) {
	t.Parallel()
	var seen []int
	done := func(n int, newest *time.Time) error {
		seen = append(seen, newest.Minute())
		return nil
	}
	if err := applyInOrder(context.Background(), 3, pagesOf(40), slowEven(-1), done); err != nil {
		t.Fatal(err)
	}
	want := make([]int, 40)
	for i := range want {
		want[i] = i
	}
	if !slices.Equal(seen, want) {
		t.Fatalf("checkpoint order %v, want %v", seen, want)
	}

	seen = nil
	err := applyInOrder(context.Background(), 3, pagesOf(40), slowEven(12), done)
	if err == nil || err.Error() != "page refused" {
		t.Fatalf("err = %v, want the refused page's", err)
	}
	if !slices.Equal(seen, want[:12]) {
		t.Fatalf("checkpoint saw %v after page 12 failed, want pages 0..11 only", seen)
	}
}

// A failing checkpoint write stops the pipeline with its error; a failing listing likewise.
func TestApplyInOrderStopsOnCheckpointOrListingError(t *testing.T) {
	t.Parallel()
	calls := 0
	done := func(int, *time.Time) error {
		calls++
		if calls == 5 {
			return errors.New("checkpoint lost")
		}
		return nil
	}
	if err := applyInOrder(context.Background(), 2, pagesOf(40), slowEven(-1), done); err == nil || err.Error() != "checkpoint lost" {
		t.Fatalf("err = %v", err)
	}
	if calls != 5 {
		t.Fatalf("checkpoint written %d times after it failed at 5", calls)
	}
	listing := func(ctx context.Context, out chan<- numberedPage) error {
		if err := pagesOf(3)(ctx, out); err != nil {
			return err
		}
		return errors.New("keap went away")
	}
	if err := applyInOrder(context.Background(), 2, listing, slowEven(-1), func(int, *time.Time) error { return nil }); err == nil || err.Error() != "keap went away" {
		t.Fatalf("err = %v", err)
	}
}

// Pages of later slices that finish first wait for the earlier slices: the checkpoint sees the
// listing's order, slice by slice, and an empty slice end moves it on.
func TestApplyInOrderReportsSlicesInListingOrder(t *testing.T) {
	base := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	fetch := func(ctx context.Context, out chan<- numberedPage) error {
		for slice := 3; slice >= 0; slice-- { // the last slice first
			for seq := range 3 {
				p := numberedPage{slice: slice, seq: seq, end: seq == 2}
				if !(slice == 1 && seq == 2) { // slice 1 ends with an empty page
					m := slice*3 + seq
					p.records = []record{{id: int64(m), modified: base.Add(time.Duration(m) * time.Minute)}}
				}
				out <- p
			}
		}
		return nil
	}
	var seen []int
	done := func(n int, newest *time.Time) error {
		seen = append(seen, newest.Minute())
		return nil
	}
	if err := applyInOrder(context.Background(), 2, fetch, slowEven(-1), done); err != nil {
		t.Fatal(err)
	}
	want := []int{0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 11}
	if !slices.Equal(seen, want) {
		t.Fatalf("checkpoint order %v, want %v", seen, want)
	}
}

// Ranges are cut on whole seconds, about 0.8 pages each, and not at all for a listing of one page.
func TestSliceBounds(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 500e6, time.UTC)
	if b := sliceBounds(t0, t0.Add(time.Hour), 900, 1000, 8); b != nil {
		t.Fatalf("one page cut into %v", b)
	}
	b := sliceBounds(t0, t0.Add(time.Hour), 10000, 1000, 8)
	if len(b) < 10 || len(b) > 14 {
		t.Fatalf("10 pages cut into %d ranges", len(b)+1)
	}
	for i, x := range b {
		if x.Nanosecond() != 0 || !x.After(t0) || (i > 0 && !x.After(b[i-1])) {
			t.Fatalf("bounds %v", b)
		}
	}
}

// Every type the registry sweeps has a kind that reads it from Keap, and no kind is left over.
func TestKindsMatchTheRegistry(t *testing.T) {
	var have []string
	for name, k := range kinds {
		if k.objectType != name {
			t.Errorf("kinds[%q].objectType = %q", name, k.objectType)
		}
		have = append(have, name)
	}
	want := slices.Clone(ObjectTypes)
	slices.Sort(have)
	slices.Sort(want)
	if !slices.Equal(have, want) {
		t.Fatalf("kinds %v, registry's swept types %v", have, want)
	}
}

// The open-ended last range is asked of Keap once every other range has been read, while their
// pages still wait for the apply: its call's latency overlaps the apply instead of following it.
func TestFetchSlicesAsksTheLastRangeBeforeTheOthersAreApplied(t *testing.T) {
	t.Parallel()
	oldest := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	lastAsked := make(chan struct{})
	k := kind{
		objectType: "contact",
		span: func(context.Context, Keap, time.Time) (time.Time, int, error) {
			return oldest.Add(time.Hour), 40, nil
		},
		between: func(_ context.Context, _ Keap, since, until time.Time, limit int) iter.Seq2[record, error] {
			if since.IsZero() { // the first page, asked for beside the span: a full one
				return func(yield func(record, error) bool) {
					for i := range limit {
						if !yield(record{id: int64(i + 1), modified: oldest.Add(time.Duration(i) * time.Minute)}, nil) {
							return
						}
					}
				}
			}
			if until.IsZero() {
				close(lastAsked)
			}
			return func(yield func(record, error) bool) {
				yield(record{id: since.Unix(), modified: since}, nil)
			}
		},
	}
	s := &Sweeper{PageSize: 10, ListLimit: 10, Fetchers: 64}
	s.defaults()
	out := make(chan numberedPage) // nobody takes a page until the last range is asked
	fetched := make(chan error, 1)
	go func() { fetched <- s.fetchSlices(context.Background(), nil, k, time.Time{}, nil, 0, out) }()
	select {
	case <-lastAsked:
	case <-time.After(time.Minute): // a liveness bound, not a measure: it is asked at once
		t.Fatal("the last range waited for the other ranges' pages to be taken")
	}
	pages := 0
	for {
		select {
		case <-out:
			pages++
			continue
		case err := <-fetched:
			if err != nil {
				t.Fatal(err)
			}
		}
		break
	}
	if pages < 3 {
		t.Fatalf("%d pages: the listing was not cut into ranges", pages)
	}
}

// What a sweep holds ahead of its apply is bounded by Fetchers pieces, the pages read ahead
// included, however many ranges the listing is cut into: with the apply taking nothing, Keap is
// asked for no more ranges than fill the places the pages read already left.
func TestFetchPiecesHoldsAtMostFetchersAhead(t *testing.T) {
	t.Parallel()
	oldest := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var asked atomic.Int32
	k := kind{
		objectType: "contact",
		between: func(_ context.Context, _ Keap, since, until time.Time, _ int) iter.Seq2[record, error] {
			asked.Add(1)
			return func(yield func(record, error) bool) {
				if !until.IsZero() {
					yield(record{id: since.Unix(), modified: since}, nil)
				}
			}
		},
	}
	const fetchers, readAhead, ranges = 4, 2, 40
	pieces := []piece{}
	for i := range readAhead + ranges {
		end := oldest.Add(time.Duration(i+1) * time.Minute)
		if i < readAhead {
			pieces = append(pieces, piece{end: end, records: []record{{id: int64(i), modified: end.Add(-time.Second)}}, read: true})
			continue
		}
		pieces = append(pieces, piece{end: end})
	}
	s := &Sweeper{PageSize: 10, ListLimit: 10, Fetchers: fetchers}
	s.defaults()
	out := make(chan numberedPage) // the apply takes nothing yet
	fetched := make(chan error, 1)
	go func() { fetched <- s.fetchPieces(context.Background(), nil, k, time.Time{}, nil, pieces, out) }()
	for asked.Load() < fetchers-readAhead {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // room to ask for more, which it must not take
	if n := asked.Load(); n != fetchers-readAhead {
		t.Fatalf("%d ranges asked for while the apply took nothing; want %d (Fetchers %d less the %d pieces read ahead)", n, fetchers-readAhead, fetchers, readAhead)
	}
	got := map[int]bool{}
	for {
		select {
		case p := <-out:
			if len(p.records) > 0 {
				got[p.slice] = true
			}
			continue
		case err := <-fetched:
			if err != nil {
				t.Fatal(err)
			}
		}
		break
	}
	if len(got) != readAhead+ranges || int(asked.Load()) != ranges+1 {
		t.Fatalf("pieces with records: %d of %d; ranges asked: %d (want %d and the open end)", len(got), readAhead+ranges, asked.Load(), ranges)
	}
}

// A listing whose span Keap will not answer is still fetched whole, and its first page is not
// asked for twice: the head's first range, then the rest as one range from the cut.
func TestFetchSlicesWithoutASpanKeepsTheFirstPage(t *testing.T) {
	t.Parallel()
	oldest := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const n = 25 // records a minute apart
	heads := 0
	walk := func(from time.Time) iter.Seq2[record, error] {
		return func(yield func(record, error) bool) {
			for i := range n {
				at := oldest.Add(time.Duration(i) * time.Minute)
				if at.Before(from) {
					continue
				}
				if !yield(record{id: int64(i + 1), modified: at}, nil) {
					return
				}
			}
		}
	}
	k := kind{
		objectType: "contact",
		span: func(context.Context, Keap, time.Time) (time.Time, int, error) {
			return time.Time{}, 0, errors.New("keap: 503")
		},
		list: func(context.Context, Keap, time.Time) iter.Seq2[record, error] {
			t.Error("the listing was walked again from its start")
			return walk(time.Time{})
		},
		between: func(_ context.Context, _ Keap, since, _ time.Time, _ int) iter.Seq2[record, error] {
			if since.IsZero() {
				heads++
			}
			return walk(since)
		},
	}
	s := &Sweeper{PageSize: 10, ListLimit: 10, Fetchers: 4}
	s.defaults()
	out := make(chan numberedPage, 16)
	if err := s.fetchSlices(context.Background(), nil, k, time.Time{}, nil, 0, out); err != nil {
		t.Fatal(err)
	}
	seen := fetchedIDs(out)
	for id := int64(1); id <= n; id++ {
		if seen[id] != 1 {
			t.Fatalf("record %d fetched %d times: %v", id, seen[id], seen)
		}
	}
	if heads != 1 {
		t.Fatalf("the first page was asked for %d times", heads)
	}
}

// A backfill's pages asked for ahead by offset may come from a listing records have moved in
// meanwhile (an edit restamps one past the end, and every later offset shifts by one; three
// edits shift them by more than the pages overlap), and a page may end between two records of
// one second: every record is still fetched, and none twice but the moved ones (their old and
// their new versions).
func TestPagesAheadSurviveAShiftedListing(t *testing.T) {
	t.Parallel()
	oldest := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const n = 60 // records two a second (Keap stamps to the second); three in the head are edited once it is read
	moved := map[int64]bool{5: true, 6: true, 7: true}
	before := make([]record, n)
	for i := range before {
		before[i] = record{id: int64(i + 1), modified: oldest.Add(time.Duration(i/2) * time.Second)}
	}
	var after, edited []record
	for _, r := range before {
		if moved[r.id] {
			edited = append(edited, record{id: r.id, modified: oldest.Add(time.Hour + time.Duration(len(edited))*time.Second)})
		} else {
			after = append(after, r)
		}
	}
	after = append(after, edited...)
	in := func(list []record, since, until time.Time) iter.Seq2[record, error] {
		return func(yield func(record, error) bool) {
			for _, r := range list {
				if !r.modified.Before(since) && (until.IsZero() || r.modified.Before(until)) && !yield(r, nil) {
					return
				}
			}
		}
	}
	k := kind{
		objectType: "contact",
		span: func(context.Context, Keap, time.Time) (time.Time, int, error) {
			return after[n-1].modified, n, nil
		},
		between: func(_ context.Context, _ Keap, since, until time.Time, _ int) iter.Seq2[record, error] {
			if since.IsZero() {
				return in(before, since, until) // the head: read before the edit
			}
			return in(after, since, until)
		},
		page: func(_ context.Context, _ Keap, offset, limit int) ([]record, error) {
			return after[min(offset, n):min(offset+limit, n)], nil
		},
	}
	s := &Sweeper{PageSize: 10, ListLimit: 10, Fetchers: 8}
	s.defaults()
	out := make(chan numberedPage, 64)
	if err := s.fetchSlices(context.Background(), nil, k, time.Time{}, nil, s.Fetchers-1, out); err != nil {
		t.Fatal(err)
	}
	seen := fetchedIDs(out)
	for id := int64(1); id <= n; id++ {
		if want := 1 + btoi(moved[id]); seen[id] != want {
			t.Fatalf("record %d fetched %d times, want %d: %v", id, seen[id], want, seen)
		}
	}
}

// fetchedIDs closes out and counts how often each record came in its pages.
func fetchedIDs(out chan numberedPage) map[int64]int {
	close(out)
	seen := map[int64]int{}
	for p := range out {
		for _, r := range p.records {
			seen[r.id]++
		}
	}
	return seen
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// piecesOf keeps of each page read ahead the range inside its first and last whole seconds,
// joined to the last piece where they overlap and with a piece to walk where they do not; a
// page not given whole, stamped within one second, or out of clock order, adds nothing, and
// the pages after it still count.
func TestPiecesOf(t *testing.T) {
	t.Parallel()
	at := func(s float64) time.Time {
		return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(s * float64(time.Second)))
	}
	recs := func(stamps ...float64) []record {
		out := make([]record, len(stamps))
		for i, s := range stamps {
			out[i] = record{id: int64(s * 10), modified: at(s)}
		}
		return out
	}
	first := recs(0, 1, 2)
	pieces, known := piecesOf(at(3), first, [][]record{
		recs(2.5, 3.5, 4, 5, 6.2),    // overlaps the first range: [3, 6) from it
		nil,                          // not given whole (an item that did not decode)
		recs(8.5, 9, 10, 11.5),       // starts after 6: [6, 9) is walked, [9, 11) is read
		recs(12.1, 12.2, 12.3),       // one second: nothing inside
		recs(14.5, 13.5, 15.5, 16.5), // out of order
		recs(),                       // the end of the listing
		recs(30.5, 31.5, 32.5),       // after the end: never used
	})
	type got struct {
		end  time.Time
		n    int
		read bool
	}
	var have []got
	for _, p := range pieces {
		have = append(have, got{p.end, len(p.records), p.read})
	}
	want := []got{{at(3), 3, true}, {at(6), 3, true}, {at(9), 0, false}, {at(11), 2, true}}
	if !slices.Equal(have, want) || known != 8 {
		t.Fatalf("pieces %v (%d known), want %v (8 known)", have, known, want)
	}
}
