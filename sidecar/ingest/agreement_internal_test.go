package ingest

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// A pair agrees when v2's note, put in v1's shape, is the v1 note as it would be stored; what
// differs is named; a v2 version stamped over a second after v1's changed between the two reads
// and is not counted; and each v1 note's last updater is learned, so a pair whose v2 names the
// updater by id alone can agree.
func TestAgreementCompare(t *testing.T) {
	t.Parallel()
	k := kinds["note"]
	at := time.Date(2026, 12, 4, 10, 0, 0, 123e6, time.UTC)
	v1 := record{id: 5, modified: at, raw: json.RawMessage(`{"id":5,"body":"b","user_id":7,"last_updated":"2026-12-04T10:00:00.123Z",
		"last_updated_by":{"user_id":7,"given_name":"Ann"},"custom_fields":[]}`)}
	for _, c := range []struct {
		name, v2, difference string
		agreed, differed     int
	}{
		{"same", `{"id":"5","text":"b","assigned_to_user":{"id":"7"},"update_time":"2026-12-04T10:00:00.123Z",
			"last_updated_by_user_id":"7","custom_fields":[]}`, "", 1, 0},
		{"seconds", `{"id":"5","text":"b","assigned_to_user":{"id":"7"},"update_time":"2026-12-04T10:00:00Z",
			"last_updated_by_user_id":"7","custom_fields":[]}`, `note 5: last_updated is "2026-12-04T10:00:00.123Z" in v1, "2026-12-04T10:00:00Z" from v2`, 0, 1},
		{"unassigned", `{"id":"5","text":"b","update_time":"2026-12-04T10:00:00.123Z","last_updated_by_user_id":"7","custom_fields":[]}`,
			"note 5: user_id is 7 in v1, absent or null from v2", 0, 1},
		{"more", `{"id":"5","text":"b","assigned_to_user":{"id":"7"},"update_time":"2026-12-04T10:00:00.123Z",
			"last_updated_by_user_id":"7","custom_fields":[],"pinned":true}`, "", 1, 0}, // v1 has no place for what v2 adds
		{"changed between the reads", `{"id":"5","text":"c","update_time":"2026-12-04T10:00:01.200Z"}`, "", 0, 0},
		{"hostile", `{"id":"5","text":"b","update_time":7}`, "note 5: ", 0, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			var a agreement
			a.compare(k, v1, json.RawMessage(c.v2))
			if a.agreed != c.agreed || a.differed != c.differed || !strings.HasPrefix(a.difference, c.difference) ||
				(c.difference == "") != (a.difference == "") {
				t.Errorf("%d agreed, %d differed (%q); want %d, %d (%q)", a.agreed, a.differed, a.difference, c.agreed, c.differed, c.difference)
			}
			if string(a.users["7"]) != `{"user_id":7,"given_name":"Ann"}` {
				t.Errorf("the last updater learned: %s", a.users)
			}
		})
	}
}
