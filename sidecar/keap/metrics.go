package keap

import (
	"errors"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are labelled by route template (never the raw path: ids would explode the series) and
// by budget key (never a secret: keys are hashed, see KeyBudgetKey).
type metrics struct {
	requests *prometheus.CounterVec   // endpoint, method, status
	retries  *prometheus.CounterVec   // endpoint, reason
	duration *prometheus.HistogramVec // endpoint
	throttle *prometheus.GaugeVec     // budget
	quota    *prometheus.GaugeVec     // budget
	rate     *prometheus.GaugeVec     // budget
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "keapsync", Subsystem: "keap",
			Name: "requests_total", Help: "Keap API responses by route template, method and HTTP status (0: no response)."},
			[]string{"endpoint", "method", "status"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "keapsync", Subsystem: "keap",
			Name: "retries_total", Help: "Keap API calls retried, by route template and reason (429, 5xx, network, refresh)."},
			[]string{"endpoint", "reason"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "keapsync", Subsystem: "keap",
			Name: "request_duration_seconds", Help: "Keap API round trips, without limiter waits.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 12)}, []string{"endpoint"}),
		throttle: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "keapsync", Subsystem: "keap",
			Name: "throttle_available", Help: "Calls left in Keap's per-minute window, as last reported."}, []string{"budget"}),
		quota: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "keapsync", Subsystem: "keap",
			Name: "quota_available", Help: "Calls left in Keap's daily quota, as last reported."}, []string{"budget"}),
		rate: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "keapsync", Subsystem: "keap",
			Name: "limiter_rate", Help: "Calls per second this process may make on the budget now."}, []string{"budget"}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	m.requests, err = register(reg, m.requests)
	if err == nil {
		m.retries, err = register(reg, m.retries)
	}
	if err == nil {
		m.duration, err = register(reg, m.duration)
	}
	if err == nil {
		m.throttle, err = register(reg, m.throttle)
	}
	if err == nil {
		m.quota, err = register(reg, m.quota)
	}
	if err == nil {
		m.rate, err = register(reg, m.rate)
	}
	return m, err
}

// register adopts an identical collector already registered, so several Clients (one per
// tenant) can share one registry.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		return c, err
	}
	return c, nil
}

func (m *metrics) response(endpoint, method string, status int) {
	m.requests.WithLabelValues(endpoint, method, strconv.Itoa(status)).Inc()
}

func (m *metrics) budget(b *Budget) {
	s := b.Stats()
	if s.ThrottleAvailable >= 0 {
		m.throttle.WithLabelValues(s.Key).Set(float64(s.ThrottleAvailable))
	}
	if s.QuotaAvailable >= 0 {
		m.quota.WithLabelValues(s.Key).Set(float64(s.QuotaAvailable))
	}
	m.rate.WithLabelValues(s.Key).Set(s.Rate)
}
