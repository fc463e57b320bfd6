package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"
)

// maxBatch is Keap's limit of changed objects per delivery (FACTS.md §6).
const maxBatch = 1000

type objectKey struct {
	ID        int64  `json:"id"`
	APIURL    string `json:"apiUrl,omitempty"`
	Timestamp string `json:"timestamp"`
}

type batch struct {
	eventKey, objectType string
	keys                 []objectKey
	attempt              int // attempts made so far
	due                  time.Time
}

// DeliveryRecord is one delivery attempt, as /_sandbox/deliveries reports it.
type DeliveryRecord struct {
	HookKey  string    `json:"hook_key"`
	EventKey string    `json:"event_key"`
	URL      string    `json:"url"`
	Attempt  int       `json:"attempt"`
	IDs      []int64   `json:"ids"`
	Status   int       `json:"status,omitempty"`
	Error    string    `json:"error,omitempty"`
	Outcome  string    `json:"outcome"` // delivered, failed, gone, dropped, duplicate
	At       time.Time `json:"at"`
}

// hookQueue is one hook's backlog: changes still collecting, then ready batches in order.
type hookQueue struct {
	collecting *batch
	ready      []*batch
	inflight   bool
}

// deliveryQueue batches events per hook and delivers them with Keap's retry schedule. One batch
// per hook is in flight at a time so deliveries keep their order (unless Reorder is injected).
type deliveryQueue struct {
	mu      sync.Mutex
	queues  map[string]*hookQueue
	records []DeliveryRecord
	kick    chan struct{}
	wg      sync.WaitGroup

	clock    Clock
	delay    time.Duration
	tagDelay time.Duration // contactGroup.applied and contactGroup.delete
	backoff  []time.Duration
	timeout  time.Duration
	client   *http.Client
	hooks    *hookService
	faults   *faultState
	baseURL  func() string
	log      *slog.Logger
}

// enqueue adds events for every verified subscriber. Changes arriving while a batch is still
// collecting join it; the batch is due HookDelay after its first change.
func (q *deliveryQueue) enqueue(evs []event) {
	now := q.clock.Now()
	q.mu.Lock()
	for _, ev := range evs {
		for _, hk := range q.hooks.subscribers(ev.key) {
			hq := q.queues[hk.Key]
			if hq == nil {
				hq = &hookQueue{}
				q.queues[hk.Key] = hq
			}
			if hq.collecting == nil {
				delay := q.delay
				if ev.key == "contactGroup.applied" || ev.key == "contactGroup.delete" {
					delay = q.tagDelay
				}
				hq.collecting = &batch{eventKey: ev.key, objectType: ev.objectType, due: now.Add(delay)}
			}
			key := objectKey{ID: ev.id, Timestamp: keapTime(ev.at)}
			if ev.apiPath != "" {
				key.APIURL = q.baseURL() + "/crm/rest" + ev.apiPath
			}
			hq.collecting.keys = append(hq.collecting.keys, key)
		}
	}
	q.mu.Unlock()
	q.wake()
}

func (q *deliveryQueue) wake() {
	select {
	case q.kick <- struct{}{}:
	default:
	}
}

// drop forgets a hook's backlog (deleted, changed, or Inactive hooks get nothing more).
func (q *deliveryQueue) drop(key string) {
	q.mu.Lock()
	delete(q.queues, key)
	q.mu.Unlock()
}

// run dispatches until ctx ends, waking on its interval and whenever the clock or the queue
// changes.
func (q *deliveryQueue) run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			q.wg.Wait()
			return
		case <-t.C:
		case <-q.kick:
		}
		q.dispatch(ctx)
	}
}

func (q *deliveryQueue) dispatch(ctx context.Context) {
	now := q.clock.Now()
	reorder := q.faults.get().Reorder
	q.mu.Lock()
	defer q.mu.Unlock()
	for key, hq := range q.queues {
		if c := hq.collecting; c != nil && !now.Before(c.due) {
			if reorder {
				slices.Reverse(c.keys)
			}
			for chunk := range slices.Chunk(c.keys, maxBatch) {
				hq.ready = append(hq.ready, &batch{eventKey: c.eventKey, objectType: c.objectType, keys: chunk, due: c.due})
			}
			hq.collecting = nil
		}
		if hq.inflight || len(hq.ready) == 0 || now.Before(hq.ready[0].due) {
			continue
		}
		hq.inflight = true
		b := hq.ready[0]
		q.wg.Add(1)
		go func() {
			defer q.wg.Done()
			q.attempt(ctx, key, hq, b)
		}()
	}
}

// attempt sends one batch and applies Keap's policy: 2xx/3xx is success; 410 makes the hook
// Inactive at once; anything else (or no answer within the timeout) is retried after the next
// backoff, and after the last attempt the hook becomes Inactive.
func (q *deliveryQueue) attempt(ctx context.Context, hookKey string, hq *hookQueue, b *batch) {
	hk, err := q.hooks.get(hookKey)
	if err != nil || hk.Status != StatusVerified {
		q.mu.Lock()
		if q.queues[hookKey] == hq {
			delete(q.queues, hookKey)
		}
		q.mu.Unlock()
		return
	}
	b.attempt++
	rec := DeliveryRecord{HookKey: hookKey, EventKey: b.eventKey, URL: hk.HookURL, Attempt: b.attempt, At: q.clock.Now()}
	for _, k := range b.keys {
		rec.IDs = append(rec.IDs, k.ID)
	}
	outcome := "dropped"
	if !q.faults.roll(func(f Faults) float64 { return f.DropRate }) {
		rec.Status, err = q.post(ctx, hk.HookURL, b)
		outcome = classify(rec.Status, err)
		if err != nil {
			rec.Error = err.Error()
		}
	}
	rec.Outcome = outcome
	q.record(rec)
	if outcome == "delivered" && q.faults.roll(func(f Faults) float64 { return f.DuplicateRate }) {
		dup := rec
		dup.Status, err = q.post(ctx, hk.HookURL, b)
		dup.Outcome, dup.Error, dup.At = "duplicate", "", q.clock.Now()
		if err != nil {
			dup.Error = err.Error()
		}
		q.record(dup)
	}

	switch {
	case outcome == "gone":
		q.hooks.deactivate(hookKey)
		return
	case outcome == "failed" && b.attempt > len(q.backoff):
		q.hooks.deactivate(hookKey)
		return
	}
	q.mu.Lock()
	// The hook's queue may have been dropped and re-created meanwhile (re-pointed hook);
	// only the queue this batch came from is ours to update.
	if q.queues[hookKey] == hq {
		hq.inflight = false
		if outcome == "failed" {
			b.due = q.clock.Now().Add(q.backoff[b.attempt-1])
		} else if len(hq.ready) > 0 && hq.ready[0] == b {
			hq.ready = hq.ready[1:]
		}
	}
	q.mu.Unlock()
	q.wake()
}

func classify(status int, err error) string {
	switch {
	case err != nil:
		return "failed"
	case status == http.StatusGone:
		return "gone"
	case status >= 200 && status < 400:
		return "delivered"
	}
	return "failed"
}

// post sends the documented payload. Deliveries carry no X-Hook-Secret and no signature
// (FACTS.md §6): receivers must re-fetch the objects over the authenticated API.
func (q *deliveryQueue) post(ctx context.Context, url string, b *batch) (int, error) {
	body, err := json.Marshal(map[string]any{"event_key": b.eventKey, "object_type": b.objectType, "object_keys": b.keys})
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, q.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := q.client.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

func (q *deliveryQueue) record(r DeliveryRecord) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.records = append(q.records, r)
	if len(q.records) > 10000 {
		q.records = q.records[len(q.records)-10000:]
	}
	q.log.Debug("hook delivery", "hook", r.HookKey, "event", r.EventKey, "attempt", r.Attempt, "outcome", r.Outcome, "ids", len(r.IDs))
}

func (q *deliveryQueue) history() []DeliveryRecord {
	q.mu.Lock()
	defer q.mu.Unlock()
	return slices.Clone(q.records)
}

// flush makes every queued batch due now, for tests and the CLI's impatient humans.
func (q *deliveryQueue) flush() {
	now := q.clock.Now()
	q.mu.Lock()
	for _, hq := range q.queues {
		if hq.collecting != nil {
			hq.collecting.due = now
		}
		for _, b := range hq.ready {
			b.due = now
		}
	}
	q.mu.Unlock()
	q.wake()
}

// idle reports whether nothing is queued or in flight.
func (q *deliveryQueue) idle() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, hq := range q.queues {
		if hq.collecting != nil || len(hq.ready) > 0 || hq.inflight {
			return false
		}
	}
	return true
}

// busy reports whether a batch is in flight or due now.
func (q *deliveryQueue) busy() bool {
	now := q.clock.Now()
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, hq := range q.queues {
		if hq.inflight || (hq.collecting != nil && !now.Before(hq.collecting.due)) || (len(hq.ready) > 0 && !now.Before(hq.ready[0].due)) {
			return true
		}
	}
	return false
}
