package sandbox

import (
	"bytes"
	"encoding/json"
	"net/http"
	"sync/atomic"
)

// profileState holds the live Profile. It is read on hot paths (every listing, every stamp)
// and switched at runtime by the test API, so it is an atomic pointer rather than a field
// under the store's lock.
type profileState struct{ p atomic.Pointer[Profile] }

func (ps *profileState) get() Profile {
	if p := ps.p.Load(); p != nil {
		return *p
	}
	return Profile{}
}

func (ps *profileState) set(p Profile) { ps.p.Store(&p) }

// Profile returns the behaviours the sandbox follows now.
func (s *Server) Profile() Profile { return s.store.profile.get() }

// SetProfile switches behaviours at runtime (tests run one sandbox under several profiles).
func (s *Server) SetProfile(p Profile) { s.store.profile.set(p) }

// profileRoutes: GET /_sandbox/profile shows the switches; PUT takes {"name": "hardest"} for a
// preset, or the switches themselves ({"SecondStamps": true, ...}), which replace all of them.
func (a *admin) profileRoutes(h func(string, handlerFunc)) {
	h("GET /_sandbox/profile", func(w http.ResponseWriter, r *http.Request) error {
		writeJSON(w, http.StatusOK, a.s.Profile())
		return nil
	})
	h("PUT /_sandbox/profile", func(w http.ResponseWriter, r *http.Request) error {
		var raw map[string]json.RawMessage
		if err := json.NewDecoder(r.Body).Decode(&raw); err != nil {
			return badRequest("profile: " + err.Error())
		}
		var p Profile
		if name, ok := raw["name"]; ok {
			var n string
			if err := json.Unmarshal(name, &n); err != nil {
				return badRequest("profile name: want a string")
			}
			var err error
			if p, err = ParseProfile(n); err != nil {
				return badRequest(err.Error())
			}
		} else {
			b, _ := json.Marshal(raw)
			dec := json.NewDecoder(bytes.NewReader(b))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&p); err != nil {
				return badRequest("profile: " + err.Error())
			}
		}
		a.s.SetProfile(p)
		writeJSON(w, http.StatusOK, p)
		return nil
	})
}
