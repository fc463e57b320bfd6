package keap_test

import (
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/keapsync/keapsync/sidecar/keap"
)

// How serve wires the client: one Budget per Keap budget, shared by every Client drawing on
// it and divided among the processes through Postgres; backfill marked Background.
func Example() {
	ctx := context.Background()
	pool, _ := pgxpool.New(ctx, "postgres://localhost:5432/postgres")
	var creds keap.Credentials = keap.APIKey("KeapAK-...") // or the OAuth token keeper

	app, _ := keap.NewBudget(keap.BudgetConfig{Key: keap.KeyBudgetKey("KeapAK-..."), Limits: keap.KeyLimits, Logger: slog.Default()})
	tenant, _ := keap.NewBudget(keap.BudgetConfig{Key: keap.TenantBudgetKey("ab123.infusionsoft.com"), Limits: keap.TenantLimits})
	share, _ := keap.NewBudgetShare(pool, app, keap.BudgetShareConfig{})
	if err := share.Start(ctx); err != nil {
		return
	}
	defer share.Stop()

	client, err := keap.New(keap.Config{APIURL: keap.DefaultAPIURL, Credentials: creds,
		AppBudget: app, TenantBudget: tenant, Registerer: prometheus.DefaultRegisterer})
	if err != nil {
		return
	}
	since := time.Now().Add(-time.Hour)
	backfill := keap.WithPriority(ctx, keap.Background)
	for contact, err := range client.ContactsSince(backfill, since, keap.ContactQuery{
		Limit: 1000, OptionalProperties: []string{keap.PropCustomFields}}) {
		if err != nil {
			return // an *keap.APIError carries Keap's message for the dead-letter table
		}
		_ = contact.Raw // handed to the database's apply function as is
	}
}
