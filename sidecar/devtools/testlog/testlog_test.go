package testlog_test

import (
	"strings"
	"testing"

	"github.com/keapsync/keapsync/sidecar/devtools/testlog"
)

// recorder is a testing.TB that keeps what is logged.
type recorder struct {
	testing.TB
	lines []string
}

func (r *recorder) Helper()         {}
func (r *recorder) Log(args ...any) { r.lines = append(r.lines, args[0].(string)) }

func TestLinesGoToTLog(t *testing.T) {
	t.Parallel()
	r := &recorder{TB: t}
	log := testlog.New(r)
	log.Debug("hidden")
	log.Info("shown", "component", "x")
	if len(r.lines) != 1 || !strings.Contains(r.lines[0], `msg=shown component=x`) || strings.HasSuffix(r.lines[0], "\n") {
		t.Errorf("logged %q", r.lines)
	}
}
