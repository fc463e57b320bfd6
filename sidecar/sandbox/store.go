package sandbox

import (
	"slices"
	"sync"
	"time"
)

// event is one change Keap would announce through REST Hooks.
type event struct {
	key        string // e.g. "contact.edit"
	objectType string // e.g. "contact"
	id         int64
	apiPath    string // e.g. "/v1/contacts/12"; made absolute at delivery
	at         time.Time
}

// store is the in-memory Keap account. One RWMutex guards it all: the sandbox is about
// faithfulness, and whole-store locking makes every list a consistent snapshot.
type store struct {
	mu      sync.RWMutex
	stamp   *stamper
	profile *profileState // shared with stamp
	publish func([]event) // called under the write lock, so events queue in stamp order
	tenant  string

	seq map[string]int64 // next id per kind

	contacts   map[int64]*contact
	contactIDs []int64 // ascending; ids only grow so appends keep it sorted
	fields     []customField

	categories map[int64]*tagCategory
	tags       map[int64]*tag
	tagIDs     []int64

	products map[int64]*product
	orders   map[int64]*order
	orderIDs []int64

	subs   map[int64]*subscription
	subIDs []int64

	companies  map[int64]*company
	companyIDs []int64

	tasks   map[int64]*task
	taskIDs []int64

	stages   map[int64]*stage
	stageIDs []int64
	opps     map[int64]*opportunity
	oppIDs   []int64
	notes    map[int64]*note
	noteIDs  []int64
}

func newStore(clock Clock) *store {
	prof := &profileState{}
	return &store{
		profile:    prof,
		stamp:      &stamper{clock: clock, profile: prof},
		publish:    func([]event) {},
		seq:        map[string]int64{},
		contacts:   map[int64]*contact{},
		categories: map[int64]*tagCategory{},
		tags:       map[int64]*tag{},
		products:   map[int64]*product{},
		orders:     map[int64]*order{},
		subs:       map[int64]*subscription{},
		companies:  map[int64]*company{},
	}
}

// nextID hands out ids per kind. Keap ids are int64 and never reused.
func (s *store) nextID(kind string) int64 {
	s.seq[kind]++
	return s.seq[kind]
}

// addRecord files a new record under its id, in a collection's map (made on first use) and at
// the end of its listing order.
func addRecord[T any](records *map[int64]T, ids *[]int64, id int64, r T) {
	if *records == nil {
		*records = map[int64]T{}
	}
	(*records)[id] = r
	*ids = append(*ids, id)
}

func removeID(ids []int64, id int64) []int64 {
	if i, ok := slices.BinarySearch(ids, id); ok {
		return slices.Delete(ids, i, i+1)
	}
	return ids
}

// write runs fn under the write lock and queues its events before unlocking, so events reach
// the hook queue in the order of their timestamps. Queueing never blocks on delivery.
func (s *store) write(fn func() ([]event, error)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	evs, err := fn()
	if len(evs) > 0 {
		s.publish(evs)
	}
	return err
}
