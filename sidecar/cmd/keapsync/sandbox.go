package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/keapsync/keapsync/sidecar/sandbox"
)

// sandboxCommand serves the Keap emulator until interrupted.
func sandboxCommand() *cli.Command {
	return &cli.Command{
		Name:  "sandbox",
		Usage: "serve a local Keap emulator (OAuth, REST v1, REST Hooks) with generated data",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "addr", Value: "127.0.0.1:8089", EnvVars: []string{"KEAPSYNC_SANDBOX_ADDR"}, Usage: "listen address (loopback only)"},
			&cli.IntFlag{Name: "contacts", Value: 1000, EnvVars: []string{"KEAPSYNC_SANDBOX_CONTACTS"}, Usage: "contacts to generate (with tags, orders, subscriptions)"},
			&cli.Int64Flag{Name: "seed", Value: 1, EnvVars: []string{"KEAPSYNC_SANDBOX_SEED"}, Usage: "seed for generated data and credentials"},
			&cli.DurationFlag{Name: "hook-delay", Value: 30 * time.Second, EnvVars: []string{"KEAPSYNC_SANDBOX_HOOK_DELAY"}, Usage: "wait before the first delivery of a batch (Keap: 30-60s)"},
			&cli.DurationFlag{Name: "tag-hook-delay", Value: 5 * time.Minute, EnvVars: []string{"KEAPSYNC_SANDBOX_TAG_HOOK_DELAY"}, Usage: "first-delivery wait for contactGroup.applied/delete (Keap: 5-10min)"},
			&cli.StringFlag{Name: "tenant", Value: "ks001.infusionsoft.com", Usage: "tenant (app) name in scope and x-keap-tenant-id"},
			&cli.BoolFlag{Name: "auto-approve", Usage: "approve OAuth authorization without the consent page"},
			&cli.BoolFlag{Name: "allow-remote-hooks", Usage: "allow hook URLs on non-loopback hosts"},
			&cli.StringFlag{Name: "profile", Value: "documented", EnvVars: []string{"KEAPSYNC_SANDBOX_PROFILE"},
				Usage: "Keap behaviours where the documents are silent: " + strings.Join(sandbox.ProfileNames(), " or ") + " (see sidecar/sandbox/README.md)"},
		},
		Action: runSandbox,
	}
}

// sandboxConfig is what `keapsync sandbox` reads: the emulator's options and the profile by name.
type sandboxConfig struct {
	Options     sandbox.Options
	ProfileName string
}

func readSandboxConfig(c *cli.Context) (sandboxConfig, error) {
	log, err := newLogger(c)
	return sandboxConfig{ProfileName: c.String("profile"), Options: sandbox.Options{
		Addr:             c.String("addr"),
		Logger:           log,
		Seed:             c.Int64("seed"),
		Contacts:         c.Int("contacts"),
		Tenant:           c.String("tenant"),
		HookDelay:        c.Duration("hook-delay"),
		TagHookDelay:     c.Duration("tag-hook-delay"),
		AutoApprove:      c.Bool("auto-approve"),
		AllowRemoteHooks: c.Bool("allow-remote-hooks"),
	}}, err
}

// Validate resolves the profile by its name; sandbox.New checks the other options.
func (s *sandboxConfig) Validate() error {
	var err error
	s.Options.Profile, err = sandbox.ParseProfile(s.ProfileName)
	return err
}

func runSandbox(c *cli.Context) error {
	cfg, err := settings(c, readSandboxConfig)
	if err != nil {
		return err
	}
	return serveSandbox(c.Context, c.App.Writer, cfg)
}

// serveSandbox serves the emulator until ctx ends, after printing where and with what credentials.
func serveSandbox(ctx context.Context, out io.Writer, cfg sandboxConfig) error {
	srv, err := sandbox.New(cfg.Options)
	if err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	if err := srv.Start(ctx); err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	creds := srv.Credentials()
	fmt.Fprintf(out, "Keap sandbox at %s\n", srv.URL())
	fmt.Fprintf(out, "  REST v1:       %s/crm/rest/v1\n", srv.URL())
	fmt.Fprintf(out, "  authorize:     %s/app/oauth/authorize\n", srv.URL())
	fmt.Fprintf(out, "  token:         %s/token\n", srv.URL())
	fmt.Fprintf(out, "  test surface:  %s/_sandbox/\n", srv.URL())
	fmt.Fprintf(out, "  profile:       %s\n", cfg.ProfileName)
	fmt.Fprintf(out, "  client id:     %s\n", creds.ClientID)
	fmt.Fprintf(out, "  client secret: %s\n", creds.ClientSecret)
	fmt.Fprintf(out, "  personal key:  %s\n", creds.PersonalKey)
	<-ctx.Done()
	return srv.Close()
}
