package serve

import (
	"context"
	"slices"
	"testing"

	"github.com/keapsync/keapsync/sidecar/ingest"
	"github.com/keapsync/keapsync/sidecar/lifecycle"
)

type namedPart struct{ name string }

func (namedPart) Start(context.Context) error { return nil }
func (namedPart) Stop()                       {}

// Every long-running part, the pruner and the notifier too, is started by one lifecycle.Run in
// one order (the budget shares first, the dashboard last); the ones not configured are left out.
func TestPartsStartInOneOrder(t *testing.T) {
	t.Parallel()
	names := func(parts []lifecycle.Part) []string {
		var out []string
		for _, p := range parts {
			if n, ok := p.(namedPart); ok {
				out = append(out, n.name)
			} else {
				out = append(out, "worker")
			}
		}
		return out
	}
	s := &Server{Worker: &ingest.Worker{}, BudgetShares: namedPart{"shares"}, Tokens: namedPart{"tokens"},
		Push: namedPart{"push"}, Retention: namedPart{"retention"}, Notify: namedPart{"notify"}, Dashboard: namedPart{"dashboard"}}
	want := []string{"shares", "worker", "tokens", "push", "retention", "notify", "dashboard"}
	if got := names(s.parts(Config{}.withDefaults())); !slices.Equal(got, want) {
		t.Errorf("parts %v, want %v", got, want)
	}
	s = &Server{Worker: &ingest.Worker{}, Retention: namedPart{"retention"}}
	if got := names(s.parts(Config{}.withDefaults())); !slices.Equal(got, []string{"worker", "retention"}) {
		t.Errorf("parts without the optional ones: %v", got)
	}
}
