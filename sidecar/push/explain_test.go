package push

import (
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// The server's errors for a misconfigured setup carry what to do, and the sentinel Consume acts
// on: wal_level and rights end it (a person must change the server), a slot in use makes it
// stand by; anything else passes unchanged, and is retried.
func TestExplainNamesWhatToDo(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		code string
		is   error
		says string
	}{
		{"55000", ErrWalLevel, "wal_level"},
		{"42501", ErrNoReplication, "REPLICATION"},
		{"53400", nil, "max_replication_slots"},
		{"55006", ErrSlotBusy, "in use"},
		{"08006", nil, "server said"},
	} {
		pg := &pgconn.PgError{Code: tc.code, Message: "server said"}
		err := explain(pg)
		if !errors.Is(err, pg) || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: %v; want the server's error, saying %q", tc.code, err, tc.says)
		}
		for _, sentinel := range []error{ErrWalLevel, ErrNoReplication, ErrSlotBusy} {
			if errors.Is(err, sentinel) != (sentinel == tc.is) {
				t.Errorf("%s: errors.Is(%v) = %v", tc.code, sentinel, !(sentinel == tc.is))
			}
		}
	}
	plain := errors.New("dial tcp: connection refused")
	if err := explain(plain); err != plain {
		t.Errorf("a network error: %v, want it unchanged", err)
	}
}
