package push

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// Config configures a Pusher. Start from DefaultConfig; DB and API are required.
type Config struct {
	// DB is the pool the workers and the consumer's enqueues use.
	DB *pgxpool.Pool
	// ReplicationURL is the database URL for the replication connection (the role needs the
	// REPLICATION attribute). Default: the pool's own connection string.
	ReplicationURL string
	// API returns the Keap client of an account.
	API func(ctx context.Context, account string) (Keap, error)
	// Log receives the pusher's logs. Default: discard.
	Log *slog.Logger
	// Registerer receives the metrics. Default: none are registered.
	Registerer prometheus.Registerer

	// Slot and Publication name the logical replication slot and publication this pusher owns.
	Slot, Publication string
	// Workers is how many records are pushed to Keap at once.
	Workers int
	// BatchSize is how many distinct changed records the consumer gathers before it writes them
	// to the queue; FlushInterval is how long it lets a partial batch wait.
	BatchSize     int
	FlushInterval time.Duration
	// StatusInterval is how often the consumer reports its confirmed position, well inside the
	// server's wal_sender_timeout (60 s by default).
	StatusInterval time.Duration
	// ReconnectDelay is the wait before reconnecting after a lost connection, and before trying
	// again to take a slot another process holds.
	ReconnectDelay time.Duration
	// Lease is how long a claimed queue row stays out of other workers' sight; an advisory lock
	// (not the lease) keeps two workers off one record, so a short lease only costs re-reads.
	Lease time.Duration
	// Settle is how long a changed record rests before it is pushed, so a burst of edits to it
	// becomes one call; it adds as much to a single edit's commit-to-Keap latency.
	Settle time.Duration
	// MaxSettle bounds how long a hot record rests. One changed again while it rests waits
	// until it has been quiet for as long as its changes have spanned so far, and at least
	// Settle once per change queued (k changes: k × Settle),
	// and one changed within MaxSettle of its last push waits until MaxSettle has passed since
	// that push, but neither waits past MaxSettle after its first queued change. A burst of
	// edits shorter than MaxSettle becomes one write; a single edit to a record not pushed
	// lately still goes after Settle. 0 means Settle (New also raises a lower one to Settle;
	// ValidateSettings refuses it, for settings a person typed).
	MaxSettle time.Duration
	// FetchBeforeUpdate reads a contact from Keap and applies it before sending an update, so
	// a field changed in Keap since the agreed state goes through the conflict policy instead of
	// being overwritten. Several due updates of one account are read with one listing of the
	// contacts changed since the versions held (a GET /v1/contacts?since=…) where that saves
	// calls; otherwise each update costs one GET, except as KnownFor allows.
	FetchBeforeUpdate bool
	// KnownFor is how long a Keap version of a contact that keapsync applied (fetched for a hook
	// or an earlier update, listed by a sweep, or answered to our own PATCH) stands for Keap's
	// current one: an update within it, with no hook for the record pending, no earlier attempt
	// unrecorded and no field-keyed list to send, goes without the fetch. A hot record's pushes
	// then cost one call each: each PATCH answer is the next push's known version. The price is
	// the window: a Keap-side edit of a field this push also sends, made within KnownFor before
	// it and not yet seen, is overwritten instead of meeting the conflict policy (the fetch
	// leaves that window one Keap round trip wide). 0, the default, reads before every update:
	// Keap offers no conditional write, so no window makes the skip provably safe.
	KnownFor time.Duration
	// PollInterval is how often an idle worker looks for due work.
	PollInterval time.Duration
	// RetryBase and RetryMax bound the exponential backoff after a retryable failure.
	RetryBase, RetryMax time.Duration
	// CallTimeout bounds one record's Keap calls.
	CallTimeout time.Duration
	// MetricsInterval is how often queue depth and slot lag are sampled.
	MetricsInterval time.Duration
	// MaxSlotLag is the retained WAL (bytes) past which keapsync_push_slot_lag_over_limit
	// raises and a warning is logged; 0 disables the alarm.
	MaxSlotLag int64
}

// DefaultConfig returns the defaults; set DB and API.
func DefaultConfig() Config {
	return Config{
		Slot:              "keapsync_push",
		Publication:       "keapsync_push",
		Workers:           4,
		BatchSize:         1000,
		FlushInterval:     100 * time.Millisecond,
		StatusInterval:    10 * time.Second,
		ReconnectDelay:    time.Second,
		Lease:             30 * time.Second,
		Settle:            500 * time.Millisecond,
		MaxSettle:         5 * time.Second,
		FetchBeforeUpdate: true,
		KnownFor:          0, // no edit of Keap's may be overwritten unseen: opt in where the window is acceptable
		PollInterval:      250 * time.Millisecond,
		RetryBase:         time.Second,
		RetryMax:          5 * time.Minute,
		CallTimeout:       2 * time.Minute,
		MetricsInterval:   5 * time.Second,
		MaxSlotLag:        1 << 30,
	}
}

// A slot or publication name goes into replication commands unquoted, so it must be a plain
// identifier.
var identifier = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// Validate reports the first problem with c.
func (c Config) Validate() error {
	switch {
	case c.DB == nil:
		return errors.New("push: DB is required")
	case c.API == nil:
		return errors.New("push: API is required")
	}
	return c.ValidateSettings()
}

// ValidateSettings is Validate without the parts wired in code (DB, API), for a caller that
// checks its settings before it opens anything.
func (c Config) ValidateSettings() error {
	switch {
	case !identifier.MatchString(c.Slot):
		return fmt.Errorf("push: slot name %q: lower-case letters, digits and _ only", c.Slot)
	case !identifier.MatchString(c.Publication):
		return fmt.Errorf("push: publication name %q: lower-case letters, digits and _ only", c.Publication)
	case c.Workers < 1:
		return fmt.Errorf("push: workers %d: at least 1", c.Workers)
	case c.BatchSize < 1:
		return fmt.Errorf("push: batch size %d: at least 1", c.BatchSize)
	case c.FlushInterval <= 0, c.StatusInterval <= 0, c.ReconnectDelay <= 0, c.Lease <= 0,
		c.PollInterval <= 0, c.Settle < 0, c.RetryBase <= 0, c.RetryMax < c.RetryBase, c.CallTimeout <= 0,
		c.MetricsInterval <= 0:
		return errors.New("push: intervals must be positive (and RetryMax >= RetryBase)")
	case c.MaxSettle < 0 || (c.MaxSettle > 0 && c.MaxSettle < c.Settle):
		return fmt.Errorf("push: max settle %v: below the settle time %v", c.MaxSettle, c.Settle)
	case c.KnownFor < 0:
		return fmt.Errorf("push: known for %v: negative (0 fetches before every update)", c.KnownFor)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.MaxSettle < c.Settle {
		c.MaxSettle = c.Settle
	}
	if c.ReplicationURL == "" && c.DB != nil {
		c.ReplicationURL = c.DB.Config().ConnString()
	}
	return c
}

// backoff is the wait before attempt n+1 after n failed ones.
func (c Config) backoff(attempts int) time.Duration {
	d := c.RetryBase
	for i := 1; i < attempts && d < c.RetryMax; i++ {
		d *= 2
	}
	return min(d, c.RetryMax)
}
