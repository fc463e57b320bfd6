package sandbox

import (
	"net/http"
	"slices"
	"sync"
	"time"
)

// RequestRecord is one request the sandbox answered (not counting /_sandbox itself).
type RequestRecord struct {
	At         time.Time     `json:"at"`
	Method     string        `json:"method"`
	Path       string        `json:"path"`
	Query      string        `json:"query,omitempty"`
	Status     int           `json:"status"`
	Credential string        `json:"credential,omitempty"` // "oauth" or "key"; never the secret
	Duration   time.Duration `json:"duration_ns"`
}

type requestLog struct {
	mu      sync.Mutex
	size    int
	records []RequestRecord
}

func (l *requestLog) add(r RequestRecord) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.records = append(l.records, r)
	if len(l.records) > l.size {
		l.records = slices.Delete(l.records, 0, len(l.records)-l.size)
	}
}

func (l *requestLog) list() []RequestRecord {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.records)
}

func (l *requestLog) clear() {
	l.mu.Lock()
	l.records = nil
	l.mu.Unlock()
}

// statusWriter remembers the status for the request log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}
