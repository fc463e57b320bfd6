package sandbox

import (
	"encoding/json"
	"strings"
	"testing"
)

// refusal is a request the sandbox must refuse, and what its answer must say.
type refusal struct {
	method, path string
	body         any
	status       int
	says         string
}

// refused sends each request and requires its status and Keap's error body ({"message"}, in
// v1's shape and v2's alike) saying what it must.
func refused(t *testing.T, c *client, rs []refusal) {
	t.Helper()
	for _, r := range rs {
		resp, body := c.do(r.method, r.path, r.body)
		var msg struct {
			Message string `json:"message"`
		}
		if resp.StatusCode != r.status || json.Unmarshal(body, &msg) != nil || msg.Message == "" || !strings.Contains(msg.Message, r.says) {
			t.Errorf("%s %s: %d %s; want %d with a message saying %q", r.method, r.path, resp.StatusCode, body, r.status, r.says)
		}
	}
}

// Keap's tag endpoints refuse as Keap does, with v1's {"message"} body: an unknown tag or
// contact named in the path is a 404 naming it; an id, category or body that does not parse,
// and a removal without the ids it is about, are a 400. A refusal applies and removes nothing.
func TestTagEndpointsRefuseAsKeapDoes(t *testing.T) {
	t.Parallel()
	srv, _ := start(t, Options{Contacts: 3, Seed: 8})
	c := newClient(t, srv, true) // malformed requests on purpose: no contract to hold them to
	const v1 = "/crm/rest/v1"
	before, _ := json.Marshal(srv.Snapshot())
	refused(t, c, []refusal{})
	if after, _ := json.Marshal(srv.Snapshot()); string(after) != string(before) {
		t.Error("a refused request changed the sandbox's state")
	}
}
