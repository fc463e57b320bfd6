package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/urfave/cli/v2"
)

// The commands a person uses to settle what sync could not: each is a thin call of the SQL
// function the dashboard calls too (law 10).

const (
	sqlListConflicts = `
select c.id, coalesce(a.keap_tenant, a.name), c.object_type, c.local_id, coalesce(c.keap_id::text, '-'), c.field,
       coalesce(c.base_value::text, 'null'), coalesce(c.local_value::text, 'null'), coalesce(c.keap_value::text, 'null'),
       c.policy, c.status, c.detected_at
  from keapsync.conflicts c join keapsync.accounts a on a.id = c.account_id
 where ($1 or c.status = 'open') and ($2 = '' or a.id::text = $2 or a.keap_tenant = $2)
 order by c.id`
	sqlResolve     = `select status from keapsync.resolve_conflict($1, $2, $3)`
	sqlResolveBulk = `select keapsync.resolve_conflicts_by_policy(a.id, $2, nullif($3, '')) from keapsync.accounts a where a.id::text = $1 or a.keap_tenant = $1`
	sqlListDead    = `
select d.id, coalesce(a.keap_tenant, a.name), d.source, d.object_type, coalesce(d.keap_id::text, '-'),
       coalesce(d.local_id::text, '-'), coalesce(d.http_status::text, '-'), d.error, d.status, d.attempts, d.last_failed_at
  from keapsync.dead_letters d join keapsync.accounts a on a.id = d.account_id
 where ($1 or d.status in ('parked', 'retry')) and ($2 = '' or a.id::text = $2 or a.keap_tenant = $2)
 order by d.id`
	sqlRetryDead   = `select status from keapsync.retry_dead_letter($1)`
	sqlDiscardDead = `select status from keapsync.discard_dead_letter($1)`
	sqlRollback    = `select keapsync.rollback_change($1)`
	sqlListHistory = `
select h.id, coalesce(a.keap_tenant, a.name), h.table_name, h.row_id, coalesce(h.keap_id::text, '-'), h.op, h.origin,
       (select string_agg(k, ', ' order by k) from jsonb_object_keys(h.changed) k),
       coalesce(h.rolled_back_by::text, '-'), h.at
  from keapsync.change_history h join keapsync.accounts a on a.id = h.account_id
 where ($1 = '' or a.id::text = $1 or a.keap_tenant = $1)
 order by h.id desc limit $2`
)

var (
	manageAccountFlag = &cli.StringFlag{Name: "account", Usage: "account id or tenant (default: all)"}
	manageAllFlag     = &cli.BoolFlag{Name: "all", Usage: "include settled ones"}
)

// listConfig is what `conflicts list` and `deadletters list` read.
type listConfig struct {
	DB      dbSettings
	Account string // id or tenant ("": all)
	All     bool   // settled ones too
}

func readListConfig(c *cli.Context) (listConfig, error) {
	return listConfig{DB: readDBSettings(c), Account: c.String(manageAccountFlag.Name), All: c.Bool(manageAllFlag.Name)}, nil
}

func (l *listConfig) Validate() error { return l.DB.Validate() }

// list prints what sql (taking --all and --account) selects, under header.
func (l *listConfig) list(c *cli.Context, sql, what, header string) error {
	return l.DB.withPool(c.Context, func(pool *pgxpool.Pool) error {
		if err := checkAccount(c.Context, pool, l.Account); err != nil {
			return err
		}
		rows, err := pool.Query(c.Context, sql, l.All, l.Account)
		if err != nil {
			return fmt.Errorf("list %s: %w", what, err)
		}
		return printRows(c, rows, header)
	})
}

// idConfig is what a command acting on one id reads (deadletters retry and discard, rollback).
type idConfig struct {
	DB   dbSettings
	Args []string
	ID   int64 // Validate reads it from Args
	// What the id is of, and List the command that shows them, to word a wrong argument.
	What, List string
}

// readIDConfig reads the database and the one id argument of a command on what, listed by list.
func readIDConfig(what, list string) func(c *cli.Context) (idConfig, error) {
	return func(c *cli.Context) (idConfig, error) {
		return idConfig{DB: readDBSettings(c), Args: c.Args().Slice(), What: what, List: list}, nil
	}
}

// Validate: one id, then the database URL.
func (i *idConfig) Validate() error {
	var err error
	if i.ID, err = idArg(i.Args, i.What, i.List); err != nil {
		return err
	}
	return i.DB.Validate()
}

// idArg reads the one id a command acts on; list names the command that shows the ids.
func idArg(args []string, what, list string) (int64, error) {
	if len(args) != 1 {
		return 0, fmt.Errorf("give one %s id (%s lists them)", what, list)
	}
	id, err := strconv.ParseInt(args[0], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("give one %s id (%s lists them)", what, list)
	}
	return id, nil
}

// checkAccount stops a list filtered by an account that does not exist (a typo would
// otherwise list nothing and look like good news).
func checkAccount(ctx context.Context, pool *pgxpool.Pool, key string) error {
	if key == "" {
		return nil
	}
	var id string
	if err := pool.QueryRow(ctx, sqlFindAccount, key).Scan(&id); err != nil {
		return accountError(key, err)
	}
	return nil
}

func conflictsCommand() *cli.Command {
	return &cli.Command{
		Name:  "conflicts",
		Usage: "list and resolve conflicts (fields changed on both sides)",
		Subcommands: []*cli.Command{
			{
				Name: "list", Usage: "open conflicts (--all: every one)", Flags: []cli.Flag{databaseURLFlag, manageAccountFlag, manageAllFlag},
				Action: func(c *cli.Context) error {
					cfg, err := settings(c, readListConfig)
					if err != nil {
						return err
					}
					return cfg.list(c, sqlListConflicts, "conflicts", "ID\tACCOUNT\tOBJECT\tLOCAL ID\tKEAP ID\tFIELD\tBASE\tLOCAL\tKEAP\tPOLICY\tSTATUS\tDETECTED")
				},
			},
			{
				Name:      "resolve",
				Usage:     "resolve one conflict (--keep keap|local, or --value JSON), or all of an account's by --policy",
				ArgsUsage: "[flags] <conflict id>",
				Flags: []cli.Flag{databaseURLFlag, manageAccountFlag,
					&cli.StringFlag{Name: "keep", Usage: "keap or local"},
					&cli.StringFlag{Name: "value", Usage: "a JSON value to set instead (a bare word is taken as a string)"},
					&cli.StringFlag{Name: "policy", Usage: "with --account: keap_wins, local_wins or newest_wins for every open conflict"},
					&cli.StringFlag{Name: "type", Usage: "with --policy: only this object type"}},
				Action: resolveConflicts,
			},
		},
	}
}

// resolveConfig is what `conflicts resolve` reads: one conflict by --keep or --value, or all of
// an account's by --policy.
type resolveConfig struct {
	DB       dbSettings
	Account  string
	Keep     string // keap or local
	Value    string // a JSON value (or a bare word, taken as a string)
	ValueSet bool
	Policy   string // keap_wins, local_wins or newest_wins, with Account
	Type     string // with Policy: only this object type
	Args     []string
	// Validate sets these for one conflict: its id, the choice (keap, local or value) and the
	// value as JSON.
	ID     int64
	Choice string
	JSON   []byte
}

func readResolveConfig(c *cli.Context) (resolveConfig, error) {
	return resolveConfig{DB: readDBSettings(c), Account: c.String(manageAccountFlag.Name), Keep: c.String("keep"),
		Value: c.String("value"), ValueSet: c.IsSet("value"), Policy: c.String("policy"), Type: c.String("type"),
		Args: c.Args().Slice()}, nil
}

// Validate: the database URL, then --policy with its --account, or one id with one choice.
func (r *resolveConfig) Validate() error {
	if err := r.DB.Validate(); err != nil {
		return err
	}
	if r.Policy != "" {
		if r.Account == "" {
			return errors.New("--policy needs --account")
		}
		return nil
	}
	var err error
	if r.ID, err = idArg(r.Args, "conflict", "keapsync conflicts list"); err != nil {
		return err
	}
	r.Choice, r.JSON = r.Keep, nil
	switch {
	case r.ValueSet && r.Keep != "":
		return errors.New("give --keep or --value, not both")
	case r.ValueSet:
		r.Choice, r.JSON = "value", []byte(r.Value)
		if !json.Valid(r.JSON) {
			r.JSON, _ = json.Marshal(r.Value)
		}
	case r.Keep != "keap" && r.Keep != "local":
		return errors.New("--keep keap, --keep local, or --value JSON")
	}
	return nil
}

func resolveConflicts(c *cli.Context) error {
	cfg, err := settings(c, readResolveConfig)
	if err != nil {
		return err
	}
	return cfg.DB.withPool(c.Context, func(pool *pgxpool.Pool) error {
		if p := cfg.Policy; p != "" {
			var n *int
			if err := pool.QueryRow(c.Context, sqlResolveBulk, cfg.Account, p, cfg.Type).Scan(&n); err != nil {
				return accountError(cfg.Account, err)
			}
			fmt.Fprintf(c.App.Writer, "resolved %d conflicts by %s\n", *n, p)
			return nil
		}
		var status string
		if err := pool.QueryRow(c.Context, sqlResolve, cfg.ID, cfg.Choice, cfg.JSON).Scan(&status); err != nil {
			return notFound(err, "open conflict", cfg.ID, "keapsync conflicts list")
		}
		fmt.Fprintf(c.App.Writer, "conflict %d %s (%s)\n", cfg.ID, status, cfg.Choice)
		return nil
	})
}

func deadLettersCommand() *cli.Command {
	act := func(sql, done string) cli.ActionFunc {
		return func(c *cli.Context) error {
			cfg, err := settings(c, readIDConfig("dead letter", "keapsync deadletters list"))
			if err != nil {
				return err
			}
			return cfg.DB.withPool(c.Context, func(pool *pgxpool.Pool) error {
				var status string
				if err := pool.QueryRow(c.Context, sql, cfg.ID).Scan(&status); err != nil {
					return notFound(err, "dead letter", cfg.ID, "keapsync deadletters list --all")
				}
				fmt.Fprintf(c.App.Writer, "dead letter %d %s\n", cfg.ID, done)
				return nil
			})
		}
	}
	return &cli.Command{
		Name:  "deadletters",
		Usage: "list, retry or discard records Keap or the database refused",
		Subcommands: []*cli.Command{
			{
				Name: "list", Usage: "parked ones (--all: every one)", Flags: []cli.Flag{databaseURLFlag, manageAccountFlag, manageAllFlag},
				Action: func(c *cli.Context) error {
					cfg, err := settings(c, readListConfig)
					if err != nil {
						return err
					}
					return cfg.list(c, sqlListDead, "dead letters", "ID\tACCOUNT\tSOURCE\tOBJECT\tKEAP ID\tLOCAL ID\tHTTP\tERROR\tSTATUS\tATTEMPTS\tLAST FAILED")
				},
			},
			{Name: "retry", Usage: "try it again", ArgsUsage: "[flags] <id>", Flags: []cli.Flag{databaseURLFlag}, Action: act(sqlRetryDead, "queued for retry")},
			{Name: "discard", Usage: "give up on it", ArgsUsage: "[flags] <id>", Flags: []cli.Flag{databaseURLFlag}, Action: act(sqlDiscardDead, "discarded")},
		},
	}
}

func rollbackCommand() *cli.Command {
	return &cli.Command{
		Name:      "rollback",
		Usage:     "undo one recorded change (keapsync.change_history id); the undo is a local edit and is pushed",
		ArgsUsage: "[flags] <history id>",
		Flags:     []cli.Flag{databaseURLFlag},
		Action: func(c *cli.Context) error {
			cfg, err := settings(c, readIDConfig("change history", "keapsync history"))
			if err != nil {
				return err
			}
			id := cfg.ID
			return cfg.DB.withPool(c.Context, func(pool *pgxpool.Pool) error {
				var undo *int64
				if err := pool.QueryRow(c.Context, sqlRollback, id).Scan(&undo); err != nil {
					return rollbackNotFound(c.Context, pool, err, id)
				}
				if undo == nil {
					fmt.Fprintf(c.App.Writer, "change %d rolled back\n", id)
				} else {
					fmt.Fprintf(c.App.Writer, "change %d rolled back by change %d\n", id, *undo)
				}
				return nil
			})
		},
	}
}

func historyCommand() *cli.Command {
	return &cli.Command{
		Name:  "history",
		Usage: "list recent recorded changes (newest first); keapsync rollback <id> undoes one",
		Flags: []cli.Flag{databaseURLFlag, manageAccountFlag,
			&cli.IntFlag{Name: "limit", Value: 20, Usage: "how many changes"}},
		Action: func(c *cli.Context) error {
			cfg, err := settings(c, readHistoryConfig)
			if err != nil {
				return err
			}
			return cfg.DB.withPool(c.Context, func(pool *pgxpool.Pool) error {
				if err := checkAccount(c.Context, pool, cfg.Account); err != nil {
					return err
				}
				rows, err := pool.Query(c.Context, sqlListHistory, cfg.Account, cfg.Limit)
				if err != nil {
					return fmt.Errorf("list changes: %w", err)
				}
				return printRows(c, rows, "ID\tACCOUNT\tTABLE\tROW\tKEAP ID\tOP\tORIGIN\tFIELDS\tROLLED BACK BY\tAT")
			})
		},
	}
}

// historyConfig is what `keapsync history` reads.
type historyConfig struct {
	DB      dbSettings
	Account string // id or tenant ("": all)
	Limit   int    // how many changes
	Args    []string
}

func readHistoryConfig(c *cli.Context) (historyConfig, error) {
	return historyConfig{DB: readDBSettings(c), Account: c.String(manageAccountFlag.Name), Limit: c.Int("limit"),
		Args: c.Args().Slice()}, nil
}

// Validate: history takes only flags, then the database URL.
func (h *historyConfig) Validate() error {
	if len(h.Args) > 0 {
		return fmt.Errorf("unexpected argument %q (history takes only flags)", h.Args[0])
	}
	return h.DB.Validate()
}

// printRows writes a query's rows as a table under header.
func printRows(c *cli.Context, rows pgx.Rows, header string) error {
	defer rows.Close()
	w := tabwriter.NewWriter(c.App.Writer, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, header)
	n := 0
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return err
		}
		for i, v := range vals {
			if i > 0 {
				fmt.Fprint(w, "\t")
			}
			if t, ok := v.(time.Time); ok {
				v = t.UTC().Format(time.RFC3339)
			}
			fmt.Fprint(w, v)
		}
		fmt.Fprintln(w)
		n++
	}
	if err := rows.Err(); err != nil {
		return err
	}
	w.Flush()
	if n == 0 {
		fmt.Fprintln(c.App.Writer, "none")
	}
	return nil
}
