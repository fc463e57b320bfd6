package serve

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/keapsync/keapsync/sidecar/devtools/pgtest"
	"github.com/keapsync/keapsync/sidecar/devtools/testlog"
)

// every runs its round at once, then again on each tick, and ends cleanly with ctx.
func TestEveryRunsNowThenOnTicks(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	rounds := make(chan struct{})
	done := make(chan error)
	go func() {
		done <- every(ctx, 1, func(context.Context) { rounds <- struct{}{} })
	}()
	<-rounds // now
	<-rounds // a tick
	cancel()
	for {
		select {
		case <-rounds: // a round that was due as ctx ended
		case err := <-done:
			if err != nil {
				t.Fatalf("every after cancel: %v", err)
			}
			return
		}
	}
}

// A scheduled round visits the accounts that can sync, in creation order, and one account's
// failure neither stops the others nor the round.
func TestForAccountsSkipsThoseThatCannotSyncAndCarriesOn(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.Pool(t)
	if _, err := db.Exec(ctx, `insert into keapsync.accounts (id, name, credential, created_at) values
  ('50000000-0000-4000-8000-0000000000c1', 'First', 'api_key', now() - interval '2 hours'),
  ('50000000-0000-4000-8000-0000000000c2', 'Second', 'api_key', now() - interval '1 hour'),
  ('50000000-0000-4000-8000-0000000000c3', 'No token', 'oauth', now())`); err != nil {
		t.Fatal(err)
	}
	s := &Server{DB: db, Log: testlog.New(t)}
	var mu sync.Mutex
	var visited []string
	s.forAccounts(ctx, "test round", func(_ context.Context, account string) error {
		mu.Lock()
		defer mu.Unlock()
		visited = append(visited, account)
		if len(visited) == 1 {
			return errors.New("this one fails")
		}
		return nil
	})
	want := []string{"50000000-0000-4000-8000-0000000000c1", "50000000-0000-4000-8000-0000000000c2"}
	if !slices.Equal(visited, want) {
		t.Errorf("visited %v, want %v", visited, want)
	}
	db.Close()
	s.forAccounts(ctx, "test round", func(context.Context, string) error {
		t.Error("a round ran without its account list")
		return nil
	})
}
