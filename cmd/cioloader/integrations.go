package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cioloader/cioloader/internal/admin"
	"github.com/cioloader/cioloader/internal/app"
	"github.com/cioloader/cioloader/internal/config"
	"github.com/cioloader/cioloader/internal/domain"
	"github.com/cioloader/cioloader/internal/postgres"
)

// dbNote ends the help of every command that works on the database.
const dbNote = "Works straight on the database: DATABASE_URL, or the embedded Postgres under CIOLOADER_DATA_DIR/pg " +
	"(joined, and left running, when cioloader serve already runs it)."

// adminCall is what an admin command runs with.
type adminCall struct {
	e      env
	svc    *admin.Service
	store  *postgres.Store // for replay, which is not an admin use case
	cfg    *config.Config
	args   []string
	asJSON bool
}

// adminCommand is a command that works on the (migrated) database through
// admin.Service, with --json and the configuration flags. Its arguments are
// checked by args before the database is opened. Its help is long, or short
// when long is empty, then dbNote.
func adminCommand(e env, use, short, long string, args cobra.PositionalArgs, run func(ctx context.Context, c *adminCall) error) *cobra.Command {
	if long == "" {
		long = strings.ToUpper(short[:1]) + short[1:] + "."
	}
	cmd := &cobra.Command{Use: use, Short: short, Long: long + "\n\n" + dbNote, Args: args}
	asJSON := cmd.Flags().Bool("json", false, "print JSON for scripts")
	return configured(cmd, e, func(ctx context.Context, cfg *config.Config, args []string) error {
		return withStore(ctx, e, cfg, cmd.CommandPath(), func(store *postgres.Store) error {
			svc := &admin.Service{Store: store, BaseURL: cfg.BaseURL(), TombstoneTTL: cfg.TombstoneTTL}
			return run(ctx, &adminCall{e: e, svc: svc, store: store, cfg: cfg, args: args, asJSON: *asJSON})
		})
	})
}

// withStore opens the database (migrating it) and runs fn with the store.
func withStore(ctx context.Context, e env, cfg *config.Config, command string, fn func(*postgres.Store) error) error {
	log := cliLogger(cfg, e, command)
	db, err := openCLIDatabase(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer db.close()
	if err := postgres.MigrateUp(ctx, db.url); err != nil {
		return fmt.Errorf("database: %w", err)
	}
	store, err := postgres.Open(ctx, db.url, cliStoreConfig(cfg, 4), log, nil)
	if err != nil {
		return fmt.Errorf("database: %w", err)
	}
	defer store.Close()
	return fn(store)
}

// cliStoreConfig is cfg's store settings with a pool of conns: one command runs a
// few statements at a time.
func cliStoreConfig(cfg *config.Config, conns int32) postgres.Config {
	sc := app.StoreConfig(cfg)
	sc.MaxConns = conns
	return sc
}

// groupCmd is a command that only holds subcommands (integrations, urls).
func groupCmd(name, short string, subs ...*cobra.Command) *cobra.Command {
	names := make([]string, len(subs))
	for i, s := range subs {
		names[i] = s.Name()
	}
	g := &cobra.Command{
		Use: name + " SUBCOMMAND", Short: short,
		Long: short + ". INTEGRATION is an integration's id, name or schema. Every subcommand takes --json.\n\n" + dbNote,
		RunE: func(c *cobra.Command, args []string) error {
			switch {
			case len(args) == 0:
				return usagef("%s needs a subcommand: %s (run cioloader %s --help)", name, strings.Join(names, ", "), name)
			case args[0] == "help":
				return c.Help()
			}
			return usagef("unknown %s subcommand %q: use %s (run cioloader %s --help)", name, args[0], strings.Join(names, ", "), name)
		},
	}
	g.AddCommand(subs...)
	return g
}

// exactArgs accepts n positional arguments; otherwise it is a usage error
// quoting the command's usage.
func exactArgs(n int) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if len(args) != n {
			return usagef("usage: %s%s (run %s --help)", c.CommandPath(), strings.TrimPrefix(c.Use, c.Name()), c.CommandPath())
		}
		return nil
	}
}

func integrationsCmd(e env) *cobra.Command {
	return groupCmd("integrations", "Manage integrations",
		adminCommand(e, "create NAME", "create an integration with its schema, tables and views", "", exactArgs(1), integrationsCreate),
		adminCommand(e, "list", "list every integration (deleted ones too)", "", exactArgs(0), integrationsList),
		adminCommand(e, "delete INTEGRATION", "delete an integration: its URLs are revoked; its schema and data stay", "", exactArgs(1), integrationsDelete),
		adminCommand(e, "set-retention INTEGRATION DAYS|none", "set how many days of events an integration keeps", retentionLong, retentionArgs, integrationsSetRetention),
	)
}

func integrationsCreate(ctx context.Context, c *adminCall) error {
	in, err := c.svc.CreateIntegration(ctx, c.args[0])
	if err != nil {
		return err
	}
	if c.asJSON {
		return printJSON(c.e.stdout, in)
	}
	fmt.Fprintf(c.e.stdout, "created integration %d %q with schema %s\n", in.ID, in.Name, in.Schema)
	return nil
}

func integrationsList(ctx context.Context, c *adminCall) error {
	list, err := c.svc.ListIntegrations(ctx)
	if err != nil {
		return err
	}
	if c.asJSON {
		return printJSON(c.e.stdout, list)
	}
	return printIntegrations(c.e.stdout, list)
}

func integrationsDelete(ctx context.Context, c *adminCall) error {
	in, err := c.svc.FindIntegration(ctx, c.args[0])
	if err != nil {
		return err
	}
	if in, err = c.svc.DeleteIntegration(ctx, in.ID); err != nil {
		return err
	}
	if c.asJSON {
		return printJSON(c.e.stdout, in)
	}
	fmt.Fprintf(c.e.stdout, "deleted integration %d %q: its URLs are revoked; schema %s and its data stay\n", in.ID, in.Name, in.Schema)
	return nil
}

func printIntegrations(w io.Writer, list []domain.Integration) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tSCHEMA\tCREATED\tSTATUS")
	for _, in := range list {
		status := "active"
		if in.DisabledAt != nil {
			status = "deleted"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", in.ID, in.Name, in.Schema, in.CreatedAt.UTC().Format(time.RFC3339), status)
	}
	return tw.Flush()
}
