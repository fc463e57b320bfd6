package keap

import (
	"context"
	"sync"
	"testing"

	"github.com/keapsync/keapsync/sidecar/sandbox"
)

// BenchmarkBacklogDrain drains a backfill backlog (Background priority, 16 workers) against
// the sandbox at Keap's real OAuth limits on a shared fake clock and reports the share of the
// per-minute limit it used (goal ≥ 0.95) and any 429s (goal 0).
func BenchmarkBacklogDrain(b *testing.B) {
	e := newEnv(b, envOptions{sandbox: sandbox.Options{Contacts: 100, Seed: 13, RequestLogSize: 50000}, oauth: true})
	ids := contactIDs(b, e)
	e.clock.setGate(quietWhen(e))
	ctx := WithPriority(context.Background(), Background)
	const perOp = 1500
	e.srv.ClearRequests()
	start := e.clock.Now()
	calls := 0
	b.ResetTimer()
	for range b.N {
		jobs := make(chan ID)
		var wg sync.WaitGroup
		for range 16 {
			wg.Go(func() {
				for id := range jobs {
					if _, err := e.client.GetContact(ctx, id); err != nil {
						b.Error(err)
					}
				}
			})
		}
		for i := range perOp {
			jobs <- ids[i%len(ids)]
		}
		close(jobs)
		wg.Wait()
		calls += perOp
	}
	b.StopTimer()
	elapsed := e.clock.Now().Sub(start)
	b.ReportMetric(float64(calls)/elapsed.Minutes()/float64(OAuthLimits.PerMinute), "budget-frac")
	b.ReportMetric(float64(count429(e.srv)), "429s")
}
