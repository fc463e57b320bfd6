package push

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// What may be sent is push_request's to decide (it answers "unsupported" for what Keap's API
// cannot do). Should it and this code ever drift apart, an op this code cannot carry is parked
// with the reason, never sent somewhere else.
func TestOpsThisCodeCannotCarryAreParked(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		objectType, op, says string
	}{
		{"tag", "update", "update of a tag is not something keapsync can send"},
		{"order", "update", "update of a order is not something keapsync can send"},
		{"tag", "delete", "Keap's API cannot delete a tag"},
	} {
		j := &pushJob{job: job{objectType: tc.objectType}}
		_, err := j.send(context.Background(), &request{Op: tc.op}, false)
		var r *refusal
		if !errors.As(err, &r) || r.status != 0 || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s of a %s: %v; want it parked, saying %q", tc.op, tc.objectType, err, tc.says)
		}
	}
}
