package main

import (
	"fmt"
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

func runSandbox(c *cli.Context) error {
	log, err := newLogger(c)
	if err != nil {
		return err
	}
	profile, err := sandbox.ParseProfile(c.String("profile"))
	if err != nil {
		return err
	}
	srv, err := sandbox.New(sandbox.Options{
		Addr:             c.String("addr"),
		Logger:           log,
		Seed:             c.Int64("seed"),
		Contacts:         c.Int("contacts"),
		Tenant:           c.String("tenant"),
		HookDelay:        c.Duration("hook-delay"),
		TagHookDelay:     c.Duration("tag-hook-delay"),
		AutoApprove:      c.Bool("auto-approve"),
		AllowRemoteHooks: c.Bool("allow-remote-hooks"),
		Profile:          profile,
	})
	if err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	if err := srv.Start(c.Context); err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	creds := srv.Credentials()
	out := c.App.Writer
	fmt.Fprintf(out, "Keap sandbox at %s\n", srv.URL())
	fmt.Fprintf(out, "  REST v1:       %s/crm/rest/v1\n", srv.URL())
	fmt.Fprintf(out, "  authorize:     %s/app/oauth/authorize\n", srv.URL())
	fmt.Fprintf(out, "  token:         %s/token\n", srv.URL())
	fmt.Fprintf(out, "  test surface:  %s/_sandbox/\n", srv.URL())
	fmt.Fprintf(out, "  profile:       %s\n", c.String("profile"))
	fmt.Fprintf(out, "  client id:     %s\n", creds.ClientID)
	fmt.Fprintf(out, "  client secret: %s\n", creds.ClientSecret)
	fmt.Fprintf(out, "  personal key:  %s\n", creds.PersonalKey)
	<-c.Context.Done()
	return srv.Close()
}
