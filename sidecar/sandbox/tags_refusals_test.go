package sandbox

import (
	"encoding/json"
	"fmt"
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

// refused sends each request and requires its status and Keap's error body saying what it must:
// {"message"} in v1, and in v2 its Error ({"code", "message", "status"}, the code the HTTP status).
func refused(t *testing.T, c *client, rs []refusal) {
	t.Helper()
	for _, r := range rs {
		resp, body := c.do(r.method, r.path, r.body)
		var msg struct {
			Message string `json:"message"`
			Code    any    `json:"code"`
			Status  string `json:"status"`
		}
		if resp.StatusCode != r.status || json.Unmarshal(body, &msg) != nil || msg.Message == "" || !strings.Contains(msg.Message, r.says) {
			t.Errorf("%s %s: %d %s; want %d with a message saying %q", r.method, r.path, resp.StatusCode, body, r.status, r.says)
		} else if strings.HasPrefix(r.path, "/crm/rest/v2/") && (fmt.Sprint(msg.Code) != fmt.Sprint(r.status) || msg.Status == "") {
			t.Errorf("%s %s: %s; want v2's error body, code %d and a status", r.method, r.path, body, r.status)
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
	refused(t, c, []refusal{
		{"GET", v1 + "/tags?category=abc", nil, 400, "Invalid category: abc"},
		{"GET", v1 + "/tags?limit=-3", nil, 400, ""},
		{"GET", v1 + "/tags/99999", nil, 404, "Tag with ID 99999 not found"},
		{"GET", v1 + "/tags/abc", nil, 400, "Invalid id"},
		{"POST", v1 + "/tags", "{", 400, ""},
		{"POST", v1 + "/tags/categories", "{", 400, ""},
		{"GET", v1 + "/tags/abc/contacts", nil, 400, "Invalid id"},
		{"GET", v1 + "/tags/99999/contacts", nil, 404, "Tag with ID 99999 not found"},
		{"POST", v1 + "/tags/abc/contacts", map[string]any{"ids": []int{1}}, 400, "Invalid id"},
		{"POST", v1 + "/tags/1/contacts", "{", 400, ""},
		{"POST", v1 + "/tags/99999/contacts", map[string]any{"ids": []int{1}}, 404, "Tag with ID 99999 not found"},
		{"POST", v1 + "/contacts/abc/tags", map[string]any{"tagIds": []int{1}}, 400, "Invalid id"},
		{"POST", v1 + "/contacts/1/tags", "{", 400, ""},
		{"POST", v1 + "/contacts/99999/tags", map[string]any{"tagIds": []int{1}}, 404, "Contact with ID 99999 not found"},
		{"GET", v1 + "/contacts/abc/tags", nil, 400, "Invalid id"},
		{"DELETE", v1 + "/contacts/abc/tags?ids=1", nil, 400, "Invalid id"},
		{"DELETE", v1 + "/contacts/1/tags?ids=x", nil, 400, ""},
		{"DELETE", v1 + "/contacts/1/tags", nil, 400, "ids is required"},
		{"DELETE", v1 + "/contacts/99999/tags?ids=1", nil, 404, "Contact with ID 99999 not found"},
		{"DELETE", v1 + "/contacts/1/tags/abc", nil, 400, "Invalid tagId"},
		{"DELETE", v1 + "/contacts/abc/tags/1", nil, 400, "Invalid id"},
		{"DELETE", v1 + "/tags/99999/contacts?ids=1", nil, 404, "Tag with ID 99999 not found"},
		{"DELETE", v1 + "/tags/1/contacts/abc", nil, 400, "Invalid contactId"},
	})
	if after, _ := json.Marshal(srv.Snapshot()); string(after) != string(before) {
		t.Error("a refused request changed the sandbox's state")
	}
}
