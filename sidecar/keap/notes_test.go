package keap_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/keapsync/keapsync/sidecar/keap"
)

// v2's Note in v1's names: text is body, the times keep v2's spelling, ids become numbers,
// assigned_to_user's id is user_id, the last updater's v1 object comes from the caller, null
// stays null and absent stays absent, and what v1 has no place for (pinned_at,
// created_by_user_id) is left out.
func TestNoteAsV1(t *testing.T) {
	t.Parallel()
	users := func(id keap.ID) json.RawMessage {
		if id == 7 {
			return json.RawMessage(`{"user_id":7,"given_name":"Ann","family_name":"Lee"}`)
		}
		return nil
	}
	for _, c := range []struct{ name, v2, v1, err string }{
		{name: "whole",
			v2: `{"id":"12","contact_id":"34","title":"Call","text":"Rang","type":"Call","create_time":"2026-01-02T03:04:05.678Z",
				"update_time":"2026-01-03T03:04:05.000Z","assigned_to_user":{"id":"7","given_name":"Ann"},"last_updated_by_user_id":"7",
				"created_by_user_id":"7","pinned_at":null,"custom_fields":[{"id":"1","content":"Red"}]}`,
			v1: `{"id":12,"contact_id":34,"title":"Call","body":"Rang","type":"Call","user_id":7,
				"last_updated_by":{"user_id":7,"given_name":"Ann","family_name":"Lee"},"date_created":"2026-01-02T03:04:05.678Z",
				"last_updated":"2026-01-03T03:04:05.000Z","custom_fields":[{"id":"1","content":"Red"}]}`},
		{name: "sparse", v2: `{"id":12,"title":null,"update_time":"2026-01-03T03:04:05Z"}`,
			v1: `{"id":12,"title":null,"last_updated":"2026-01-03T03:04:05Z"}`},
		{name: "unknown last updater", v2: `{"id":"12","last_updated_by_user_id":"8"}`, err: "last updater 8"},
		{name: "no id", v2: `{"title":"x"}`, err: "without an id"},
		{name: "not an object", v2: `[1]`, err: "a v2 note"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := keap.NoteAsV1(json.RawMessage(c.v2), users)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err %v, want one saying %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var want, have any
			if err := json.Unmarshal([]byte(c.v1), &want); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(got, &have); err != nil {
				t.Fatal(err)
			}
			if w, h := mustMarshal(t, want), mustMarshal(t, have); w != h {
				t.Errorf("got  %s\nwant %s", h, w)
			}
		})
	}
}

func mustMarshal(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
