package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cioloader/cioloader/internal/admin"
	"github.com/cioloader/cioloader/internal/app"
	"github.com/cioloader/cioloader/internal/config"
	"github.com/cioloader/cioloader/internal/domain"
	"github.com/cioloader/cioloader/internal/postgres"
	"github.com/cioloader/cioloader/migrations"
)

// dbNote ends the help of every command that works on the database.
const dbNote = "Works straight on the database: DATABASE_URL, or the embedded Postgres under CIOLOADER_DATA_DIR/pg " +
	"(joined, and left running, when cioloader serve already runs it)."

// subcommand is one action of a command group (integrations, urls).
type subcommand struct {
	name, args, summary string
	nargs               int                  // positional arguments required
	check               func([]string) error // optional check of the arguments, before the database is opened
	run                 func(ctx context.Context, c *adminCall) error
}

// adminCall is what a subcommand runs with.
type adminCall struct {
	e      env
	svc    *admin.Service
	store  *postgres.Store
	args   []string
	asJSON bool
}

// runGroup dispatches "cioloader GROUP SUB [flags] [args]": help, argument
// checks (before touching the database), then the subcommand on the database.
func runGroup(ctx context.Context, e env, group, summary string, subs []subcommand, args []string) error {
	printHelp := func() {
		fmt.Fprintf(e.stdout, "Usage: cioloader %s SUBCOMMAND [flags] [args]\n\n%s\n\nSubcommands:\n", group, summary)
		for _, s := range subs {
			fmt.Fprintf(e.stdout, "  %-30s %s\n", strings.TrimSpace(s.name+" "+s.args), s.summary)
		}
		fmt.Fprintf(e.stdout, "\nINTEGRATION is an integration's id, name or schema. Every subcommand takes --json.\n"+
			"Run cioloader %s SUBCOMMAND --help for its flags.\n", group)
	}
	names := make([]string, len(subs))
	for i, s := range subs {
		names[i] = s.name
	}
	if len(args) == 0 {
		return usagef("%s needs a subcommand: %s (run cioloader %s --help)", group, strings.Join(names, ", "), group)
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		printHelp()
		return flag.ErrHelp
	}
	for _, s := range subs {
		if s.name != args[0] {
			continue
		}
		name := group + " " + s.name
		fs := newFlags(e, name, s.args, strings.ToUpper(s.summary[:1])+s.summary[1:]+".\n\n"+dbNote)
		asJSON := fs.Bool("json", false, "print JSON for scripts")
		cfg, err := loadConfig(fs, args[1:], e)
		if err != nil {
			return err
		}
		if fs.NArg() != s.nargs {
			return usagef("usage: cioloader %s %s (run cioloader %s --help)", name, s.args, name)
		}
		if s.check != nil {
			if err := s.check(fs.Args()); err != nil {
				return err
			}
		}
		return withStore(ctx, e, cfg, name, func(store *postgres.Store) error {
			return s.run(ctx, &adminCall{
				e: e, svc: &admin.Service{Store: store, BaseURL: cfg.BaseURL()}, store: store, args: fs.Args(), asJSON: *asJSON,
			})
		})
	}
	return usagef("unknown %s subcommand %q: use %s (run cioloader %s --help)", group, args[0], strings.Join(names, ", "), group)
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
	sc := app.StoreConfig(cfg)
	sc.MaxConns = 4 // one command, a few statements at a time
	store, err := postgres.Open(ctx, db.url, sc, log, nil)
	if err != nil {
		return fmt.Errorf("database: %w", err)
	}
	defer store.Close()
	return fn(store)
}

func runIntegrations(ctx context.Context, e env, args []string) error {
	return runGroup(ctx, e, "integrations", "Manage integrations. "+dbNote, []subcommand{
		{"create", "NAME", "create an integration with its schema, tables and views", 1, nil, integrationsCreate},
		{"list", "", "list every integration (deleted ones too)", 0, nil, integrationsList},
		{"delete", "INTEGRATION", "delete an integration: its URLs are revoked; its schema and data stay", 1, nil, integrationsDelete},
	}, args)
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
	list, err := c.store.ListIntegrations(ctx)
	if err != nil {
		return err
	}
	if c.asJSON {
		if list == nil {
			list = []domain.Integration{}
		}
		return printJSON(c.e.stdout, list)
	}
	return printIntegrations(c.e.stdout, list)
}

func integrationsDelete(ctx context.Context, c *adminCall) error {
	in, err := c.store.FindIntegration(ctx, c.args[0])
	if err != nil {
		return err
	}
	if err := c.store.DisableIntegration(ctx, in.ID); err != nil {
		return err
	}
	if c.asJSON {
		if in, err = c.store.FindIntegrationByID(ctx, in.ID); err != nil {
			return err
		}
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

func runURLs(ctx context.Context, e env, args []string) error {
	return runGroup(ctx, e, "urls", "Manage webhook URLs. "+dbNote, []subcommand{
		{"generate", "INTEGRATION", "make a webhook URL (printed this once: paste it into Customer.io); at most 2 active per integration", 1, nil, urlsGenerate},
		{"list", "INTEGRATION", "list an integration's webhook URLs (token prefixes only), newest first", 1, nil, urlsList},
		{"revoke", "URL_ID", "revoke a webhook URL (its id from urls list): it stops accepting events at once", 1, checkURLID, urlsRevoke},
	}, args)
}

func urlsGenerate(ctx context.Context, c *adminCall) error {
	in, err := c.store.FindIntegration(ctx, c.args[0])
	if err != nil {
		return err
	}
	u, err := c.svc.GenerateURL(ctx, in.ID)
	if err != nil {
		return err
	}
	if c.asJSON {
		return printJSON(c.e.stdout, u)
	}
	fmt.Fprintf(c.e.stdout, "%s\n", u.URL)
	fmt.Fprintf(c.e.stderr, "URL %d for %s. This is the only time it is shown: paste it into Customer.io now.\n", u.ID, in.Schema)
	return nil
}

func urlsList(ctx context.Context, c *adminCall) error {
	in, err := c.store.FindIntegration(ctx, c.args[0])
	if err != nil {
		return err
	}
	list, err := c.store.ListURLs(ctx, in.ID)
	if err != nil {
		return err
	}
	if c.asJSON {
		if list == nil {
			list = []domain.WebhookURL{}
		}
		return printJSON(c.e.stdout, list)
	}
	return printURLs(c.e.stdout, list)
}

func checkURLID(args []string) error {
	if id, err := strconv.ParseInt(args[0], 10, 64); err != nil || id <= 0 {
		return usagef("URL_ID must be a webhook URL's number (see cioloader urls list INTEGRATION), not %q", args[0])
	}
	return nil
}

func urlsRevoke(ctx context.Context, c *adminCall) error {
	id, _ := strconv.ParseInt(c.args[0], 10, 64)
	if err := c.store.RevokeURL(ctx, 0, id); err != nil {
		return err
	}
	if c.asJSON {
		return printJSON(c.e.stdout, map[string]any{"id": id, "revoked": true})
	}
	fmt.Fprintf(c.e.stdout, "revoked webhook URL %d\n", id)
	return nil
}

func printURLs(w io.Writer, list []domain.WebhookURL) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTOKEN\tCREATED\tLAST USED\tREVOKED")
	ts := func(t *time.Time) string {
		if t == nil {
			return "-"
		}
		return t.UTC().Format(time.RFC3339)
	}
	for _, u := range list {
		fmt.Fprintf(tw, "%d\t%s…\t%s\t%s\t%s\n", u.ID, u.TokenPrefix, u.CreatedAt.UTC().Format(time.RFC3339), ts(u.LastUsedAt), ts(u.RevokedAt))
	}
	return tw.Flush()
}

// appliedMigrations counts the embedded migrations up to version v.
func appliedMigrations(v uint) int {
	entries, _ := migrations.FS.ReadDir(".")
	n := 0
	for _, e := range entries {
		var ev uint
		if _, err := fmt.Sscanf(e.Name(), "%d_", &ev); err == nil && ev <= v && strings.HasSuffix(e.Name(), ".up.sql") {
			n++
		}
	}
	return n
}

// migrateStatus is what migrate prints with --json.
type migrateStatus struct {
	Action  string `json:"action"`
	Version uint   `json:"version"`
	Dirty   bool   `json:"dirty"`
	Latest  uint   `json:"latest"`
}

func runMigrate(ctx context.Context, e env, args []string) error {
	fs := newFlags(e, "migrate", "[up|down N|version]",
		"Apply (up, the default), roll back (down N) or show (version) the control-schema migrations.\n\n"+dbNote)
	asJSON := fs.Bool("json", false, "print JSON for scripts")
	cfg, err := loadConfig(fs, args, e)
	if err != nil {
		return err
	}
	rest := fs.Args()
	action, steps := "up", 0
	if len(rest) > 0 {
		action = rest[0]
	}
	switch {
	case action == "up" && len(rest) <= 1, action == "version" && len(rest) == 1:
	case action == "down" && len(rest) == 2:
		n, err := strconv.Atoi(rest[1])
		if err != nil || n <= 0 {
			return usagef("migrate down needs a positive number of steps, not %q", rest[1])
		}
		steps = n
	default:
		return usagef("usage: cioloader migrate [up|down N|version] (run cioloader migrate --help)")
	}
	log := cliLogger(cfg, e, "migrate")
	db, err := openCLIDatabase(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer db.close()
	mg, err := postgres.NewMigrator(db.url)
	if err != nil {
		return fmt.Errorf("database: %w", err)
	}
	defer mg.Close()
	switch action {
	case "up":
		if err = mg.Up(); err == nil {
			err = upgradeIntegrations(ctx, db.url, cfg, log)
		}
	case "down":
		var v uint
		if v, _, err = mg.Version(); err != nil {
			return err
		}
		if applied := appliedMigrations(v); steps > applied {
			return fmt.Errorf("cannot roll back %d migrations: %d applied (control schema version %d)", steps, applied, v)
		}
		err = mg.Down(steps)
	}
	if err != nil {
		return err
	}
	st := migrateStatus{Action: action}
	if st.Version, st.Dirty, err = mg.Version(); err != nil {
		return err
	}
	if st.Latest, err = postgres.Latest(); err != nil {
		return err
	}
	if *asJSON {
		return printJSON(e.stdout, st)
	}
	fmt.Fprintf(e.stdout, "control schema version %d (dirty=%t; this binary's latest is %d)\n", st.Version, st.Dirty, st.Latest)
	return nil
}

// upgradeIntegrations is the per-integration migration step: tables and views
// a newer release adds are created in every existing integration's schema
// (serve does the same at start).
func upgradeIntegrations(ctx context.Context, dbURL string, cfg *config.Config, log *slog.Logger) error {
	sc := app.StoreConfig(cfg)
	sc.MaxConns = 2
	store, err := postgres.Open(ctx, dbURL, sc, log, nil)
	if err != nil {
		return err
	}
	defer store.Close()
	return store.EnsureIntegrationObjects(ctx)
}
