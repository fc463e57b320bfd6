package main

import (
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/urfave/cli/v2"

	"github.com/keapsync/keapsync/dashboard"
)

var (
	dashboardListenFlag = &cli.StringFlag{Name: "listen", EnvVars: []string{"KEAPSYNC_DASHBOARD_LISTEN"},
		Value: dashboard.DefaultConfig().Listen, Usage: "where the dashboard listens"}
	dashboardPublicURLFlag = &cli.StringFlag{Name: "public-url", EnvVars: []string{"KEAPSYNC_DASHBOARD_URL"},
		Usage: "how browsers reach the dashboard (default http://<listen>); https makes cookies Secure"}
	supabaseURLFlag = &cli.StringFlag{Name: "supabase-url", EnvVars: []string{"SUPABASE_URL"},
		Usage: "Supabase project URL for sign-in (Supabase Auth) and live updates (Realtime)"}
	supabaseAnonKeyFlag = &cli.StringFlag{Name: "supabase-anon-key", EnvVars: []string{"SUPABASE_ANON_KEY"},
		Usage: "the project's anon (publishable) key"}
	supabaseJWTSecretFlag = newSecret("supabase-jwt-secret", "SUPABASE_JWT_SECRET",
		"legacy HS256 JWT secret (optional with signing keys/JWKS; in --local mode the signing secret)")
	apiCORSOriginsFlag = &cli.StringSliceFlag{Name: "api-cors-origins", EnvVars: []string{"KEAPSYNC_API_CORS_ORIGINS"},
		Usage: "origins (https://app.example.com, comma-separated) whose browser scripts may call the dashboard's JSON API; none by default"}
	dashboardLocalFlag = &cli.BoolFlag{Name: "local",
		Usage: "local mode for the demo: sign in as the demo user with a locally minted token (refused with SUPABASE_URL)"}
)

func dashboardCommand() *cli.Command {
	return &cli.Command{
		Name:  "dashboard",
		Usage: "serve the dashboard: KPIs, sync health, conflicts, dead letters, history and data, behind Supabase Auth",
		Description: "Every page runs its queries as the signed-in person (role authenticated, their JWT claims), so " +
			"row-level security decides what they see. Without SUPABASE_URL, pass --local to sign in as the demo user.",
		Flags: append([]cli.Flag{databaseURLFlag, dashboardListenFlag, dashboardPublicURLFlag, supabaseURLFlag,
			supabaseAnonKeyFlag, dashboardLocalFlag, apiCORSOriginsFlag}, supabaseJWTSecretFlag.Flags()...),
		Action: runDashboard,
	}
}

// dashboardCommandConfig is what `keapsync dashboard` reads.
type dashboardCommandConfig struct {
	DB        dbSettings
	Dashboard dashboard.Config // checked as it is read (serve reads it too)
}

func readDashboardCommandConfig(c *cli.Context) (dashboardCommandConfig, error) {
	d, err := readDashboardConfig(c, dashboardListenFlag.Name, dashboardPublicURLFlag.Name, dashboardLocalFlag.Name)
	return dashboardCommandConfig{DB: readDBSettings(c), Dashboard: d}, err
}

// Validate: sign-in is Supabase Auth or, said explicitly, local; then the database URL.
func (d *dashboardCommandConfig) Validate() error {
	if !d.Dashboard.Local && d.Dashboard.SupabaseURL == "" {
		return errors.New("SUPABASE_URL (--supabase-url) is required; for the demo, pass --local")
	}
	return d.DB.Validate()
}

func runDashboard(c *cli.Context) error {
	cfg, err := settings(c, readDashboardCommandConfig)
	if err != nil {
		return err
	}
	return cfg.DB.withPool(c.Context, func(pool *pgxpool.Pool) error {
		srv, err := dashboard.New(cfg.Dashboard, pool)
		if err != nil {
			return err
		}
		fmt.Fprintf(c.App.Writer, "keapsync dashboard: %s\n", srv.URL())
		return srv.Run(c.Context)
	})
}

// readDashboardConfig reads the dashboard flags (the listen and local flag names differ between
// `keapsync dashboard` and `keapsync serve`).
func readDashboardConfig(c *cli.Context, listenFlag, urlFlag, localFlag string) (dashboard.Config, error) {
	log, err := newLogger(c)
	if err != nil {
		return dashboard.Config{}, err
	}
	cfg := dashboard.DefaultConfig()
	cfg.Listen = c.String(listenFlag)
	cfg.PublicURL = c.String(urlFlag)
	cfg.SupabaseURL = c.String(supabaseURLFlag.Name)
	cfg.AnonKey = c.String(supabaseAnonKeyFlag.Name)
	if cfg.JWTSecret, err = supabaseJWTSecretFlag.get(c); err != nil {
		return dashboard.Config{}, err
	}
	cfg.APICORSOrigins = c.StringSlice(apiCORSOriginsFlag.Name)
	// Local mode is explicit: a missing SUPABASE_URL in production must stop the dashboard, not
	// open it without passwords.
	cfg.Local = c.Bool(localFlag)
	cfg.Log = log
	return cfg, cfg.Validate()
}

// Serve's dashboard flags (prefixed: serve has its own --listen and --public-url): the dashboard
// runs inside serve when Supabase Auth is configured or --dashboard-local is given.
var (
	serveDashboardListenFlag = &cli.StringFlag{Name: "dashboard-listen", EnvVars: []string{"KEAPSYNC_DASHBOARD_LISTEN"},
		Value: dashboard.DefaultConfig().Listen, Usage: "where serve's dashboard listens"}
	serveDashboardURLFlag = &cli.StringFlag{Name: "dashboard-url", EnvVars: []string{"KEAPSYNC_DASHBOARD_URL"},
		Usage: "how browsers reach serve's dashboard (default http://<dashboard-listen>)"}
	serveDashboardLocalFlag = &cli.BoolFlag{Name: "dashboard-local", Usage: "serve the dashboard in local (demo) mode"}
	serveDashboardFlags     = append([]cli.Flag{serveDashboardListenFlag, serveDashboardURLFlag, serveDashboardLocalFlag,
		supabaseURLFlag, supabaseAnonKeyFlag, apiCORSOriginsFlag}, supabaseJWTSecretFlag.Flags()...)
)
