package sandbox

import (
	"encoding/json"
	"net/http"
	"time"
)

// admin is the test surface under /_sandbox: clearly apart from Keap's paths, unauthenticated,
// unthrottled and never faulted. It mirrors the Go helpers on Server.
type admin struct{ s *Server }

func (a *admin) routes(mux *http.ServeMux) {
	h := func(pattern string, fn handlerFunc) { mux.Handle(pattern, handle(fn)) }
	s := a.s
	h("GET /_sandbox/{$}", func(w http.ResponseWriter, r *http.Request) error {
		writeJSON(w, http.StatusOK, map[string]any{"endpoints": testSurface})
		return nil
	})
	h("GET /_sandbox/credentials", func(w http.ResponseWriter, r *http.Request) error {
		writeJSON(w, http.StatusOK, s.Credentials())
		return nil
	})
	h("GET /_sandbox/state", func(w http.ResponseWriter, r *http.Request) error {
		writeJSON(w, http.StatusOK, s.Snapshot())
		return nil
	})
	h("GET /_sandbox/requests", func(w http.ResponseWriter, r *http.Request) error {
		writeJSON(w, http.StatusOK, s.Requests())
		return nil
	})
	h("DELETE /_sandbox/requests", func(w http.ResponseWriter, r *http.Request) error {
		s.ClearRequests()
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
	h("GET /_sandbox/deliveries", func(w http.ResponseWriter, r *http.Request) error {
		writeJSON(w, http.StatusOK, s.Deliveries())
		return nil
	})
	h("POST /_sandbox/hooks/flush", func(w http.ResponseWriter, r *http.Request) error {
		s.FlushHooks()
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
	h("GET /_sandbox/faults", func(w http.ResponseWriter, r *http.Request) error {
		writeJSON(w, http.StatusOK, faultsJSON(s.Faults()))
		return nil
	})
	h("PUT /_sandbox/faults", a.putFaults)
	h("POST /_sandbox/tokens/revoke", func(w http.ResponseWriter, r *http.Request) error {
		var in struct {
			Token string `json:"token"`
		}
		if r.ContentLength != 0 {
			if err := decodeBody(r, &in); err != nil {
				return err
			}
		}
		writeJSON(w, http.StatusOK, map[string]int{"revoked": s.RevokeTokens(in.Token)})
		return nil
	})
	h("GET /_sandbox/clock", func(w http.ResponseWriter, r *http.Request) error {
		writeJSON(w, http.StatusOK, map[string]string{"now": keapTime(s.Now())})
		return nil
	})
	h("POST /_sandbox/clock/advance", func(w http.ResponseWriter, r *http.Request) error {
		var in struct {
			By string `json:"by"` // a Go duration, e.g. "90s", "24h"
		}
		if err := decodeBody(r, &in); err != nil {
			return err
		}
		d, err := time.ParseDuration(in.By)
		if err != nil || d < 0 {
			return badRequest("by: want a non-negative duration like 90s")
		}
		s.Advance(d)
		writeJSON(w, http.StatusOK, map[string]string{"now": keapTime(s.Now())})
		return nil
	})
	a.editRoutes(h)
	a.profileRoutes(h)
	a.bulkRoutes(h)
}

// testSurface lists the /_sandbox endpoints for people exploring with curl.
var testSurface = []string{
	"GET /_sandbox/credentials", "GET /_sandbox/state", "GET|DELETE /_sandbox/requests", "GET /_sandbox/deliveries",
	"POST /_sandbox/hooks/flush", "GET|PUT /_sandbox/faults", "POST /_sandbox/tokens/revoke {token?}",
	"GET /_sandbox/clock", "POST /_sandbox/clock/advance {by}", "POST /_sandbox/contacts",
	"PATCH|DELETE /_sandbox/contacts/{id}", "POST|DELETE /_sandbox/contacts/{id}/tags/{tagId}", "POST /_sandbox/tags {name, description}",
	"POST /_sandbox/orders", "DELETE /_sandbox/orders/{id}", "POST /_sandbox/orders/{id}/payments {amount}", "PATCH /_sandbox/subscriptions/{id} {active}",
	"GET|PUT /_sandbox/profile {name}|{switches}", "POST /_sandbox/contacts/bulk {ids, set}",
}

// faultsWire is Faults with the latency in milliseconds, friendlier for curl.
type faultsWire struct {
	LatencyMS     int64   `json:"latency_ms"`
	ErrorRate     float64 `json:"error_rate"`
	Storm429      int     `json:"storm_429"`
	DropRate      float64 `json:"drop_rate"`
	DuplicateRate float64 `json:"duplicate_rate"`
	Reorder       bool    `json:"reorder"`
}

func faultsJSON(f Faults) faultsWire {
	return faultsWire{LatencyMS: f.Latency.Milliseconds(), ErrorRate: f.ErrorRate, Storm429: f.Storm429,
		DropRate: f.DropRate, DuplicateRate: f.DuplicateRate, Reorder: f.Reorder}
}

func (a *admin) putFaults(w http.ResponseWriter, r *http.Request) error {
	var in faultsWire
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		return badRequest("faults: " + err.Error())
	}
	for _, rate := range []float64{in.ErrorRate, in.DropRate, in.DuplicateRate} {
		if rate < 0 || rate > 1 {
			return badRequest("rates must be within [0,1]")
		}
	}
	f := Faults{Latency: time.Duration(in.LatencyMS) * time.Millisecond, ErrorRate: in.ErrorRate, Storm429: in.Storm429,
		DropRate: in.DropRate, DuplicateRate: in.DuplicateRate, Reorder: in.Reorder}
	a.s.SetFaults(f)
	writeJSON(w, http.StatusOK, faultsJSON(f))
	return nil
}
