package sandbox

import (
	"math/rand/v2"
	"net/http"
	"sync"
	"time"
)

// Faults are the failures a test can inject. Rates are probabilities in [0,1]; 1 makes a knob
// deterministic. They apply to the Keap REST paths and to hook deliveries, never to /_sandbox.
type Faults struct {
	// Latency is added before every REST response (wall-clock time: it is there to exercise
	// client timeouts and concurrency, not to move the sandbox clock).
	Latency time.Duration `json:"latency"`
	// ErrorRate answers that share of REST requests with 500 before they touch any state.
	ErrorRate float64 `json:"error_rate"`
	// Storm429 answers the next N REST requests with Keap's 429, whatever the budget.
	Storm429 int `json:"storm_429"`
	// DropRate loses that share of hook deliveries (counted as delivered, never sent).
	DropRate float64 `json:"drop_rate"`
	// DuplicateRate sends that share of hook deliveries twice.
	DuplicateRate float64 `json:"duplicate_rate"`
	// Reorder delivers queued changes newest first.
	Reorder bool `json:"reorder"`
	// RetiredRoutes are ServeMux patterns ("GET /crm/rest/v1/contacts/{id}") the gateway no
	// longer serves: they answer the gateway's route-level 404, as after Keap retires a version
	// or when a client is configured with the wrong base URL.
	RetiredRoutes []string `json:"retired_routes,omitempty"`
}

// retired reports whether r matches one of the retired route patterns.
func (f Faults) retired(r *http.Request) bool {
	if len(f.RetiredRoutes) == 0 {
		return false
	}
	mux := http.NewServeMux()
	for _, p := range f.RetiredRoutes {
		func() {
			defer func() { _ = recover() }() // an invalid pattern retires nothing
			mux.Handle(p, http.NotFoundHandler())
		}()
	}
	_, pattern := mux.Handler(r)
	return pattern != ""
}

type faultState struct {
	mu  sync.Mutex
	f   Faults
	rnd *rand.Rand
}

func newFaultState(seed int64) *faultState {
	return &faultState{rnd: rand.New(rand.NewPCG(uint64(seed), 0x5eed))}
}

func (fs *faultState) get() Faults {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.f
}

func (fs *faultState) set(f Faults) {
	fs.mu.Lock()
	fs.f = f
	fs.mu.Unlock()
}

// roll draws against a rate from the seeded source, so a seed replays the same faults for the
// same sequence of calls.
func (fs *faultState) roll(rate func(Faults) float64) bool {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	r := rate(fs.f)
	return r > 0 && fs.rnd.Float64() < r
}

// takeStorm consumes one request of a 429 storm.
func (fs *faultState) takeStorm() bool {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.f.Storm429 > 0 {
		fs.f.Storm429--
		return true
	}
	return false
}
