package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/cioloader/cioloader/internal/admin"
	"github.com/cioloader/cioloader/internal/config"
	"github.com/cioloader/cioloader/internal/domain"
	"github.com/cioloader/cioloader/internal/postgres"
)

// withAdmin parses flags, opens the database (migrating it) and runs fn with
// the same admin service the HTTP API uses.
func withAdmin(ctx context.Context, e env, fs *flag.FlagSet, args []string, fn func(svc *admin.Service, rest []string) error) error {
	cfg, err := loadConfig(fs, args, e)
	if err != nil {
		return err
	}
	log := newLogger(cfg, e.stderr).With("command", fs.Name())
	log = slog.New(quietHandler{log.Handler()})
	db, err := openDatabase(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer db.close()
	if err := postgres.MigrateUp(ctx, db.url); err != nil {
		return err
	}
	store, err := postgres.Open(ctx, db.url, postgres.Config{MaxConns: 4}, log, nil)
	if err != nil {
		return err
	}
	defer store.Close()
	return fn(&admin.Service{Store: store, BaseURL: cfg.BaseURL()}, fs.Args())
}

// quietHandler keeps CLI output to warnings and errors.
type quietHandler struct{ slog.Handler }

func (q quietHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

func runIntegrations(ctx context.Context, e env, args []string) error {
	if len(args) == 0 {
		return usagef("integrations needs a subcommand: create NAME | list | delete ID")
	}
	sub, args := args[0], args[1:]
	fs := newFlags(e, "integrations "+sub, "", "Manage integrations (works straight on the database).")
	asJSON := fs.Bool("json", false, "print JSON for scripts")
	switch sub {
	case "create":
		return withAdmin(ctx, e, fs, args, func(svc *admin.Service, rest []string) error {
			if len(rest) != 1 {
				return usagef("usage: cioloader integrations create NAME")
			}
			in, err := svc.CreateIntegration(ctx, rest[0])
			if err != nil {
				return err
			}
			if *asJSON {
				return printJSON(e.stdout, in)
			}
			fmt.Fprintf(e.stdout, "created integration %d %q with schema %s\n", in.ID, in.Name, in.Schema)
			return nil
		})
	case "list":
		return withAdmin(ctx, e, fs, args, func(svc *admin.Service, rest []string) error {
			list, err := svc.Store.ListIntegrations(ctx)
			if err != nil {
				return err
			}
			if *asJSON {
				if list == nil {
					list = []domain.Integration{}
				}
				return printJSON(e.stdout, list)
			}
			return printIntegrations(e.stdout, list)
		})
	case "delete":
		return withAdmin(ctx, e, fs, args, func(svc *admin.Service, rest []string) error {
			if len(rest) != 1 {
				return usagef("usage: cioloader integrations delete ID")
			}
			in, err := svc.Store.FindIntegration(ctx, rest[0])
			if err != nil {
				return err
			}
			if err := svc.Store.DisableIntegration(ctx, in.ID); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "deleted integration %d: its URLs are revoked; schema %s and its data stay\n", in.ID, in.Schema)
			return nil
		})
	}
	return usagef("unknown integrations subcommand %q: use create, list or delete", sub)
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
	if len(args) == 0 {
		return usagef("urls needs a subcommand: generate INTEGRATION | list INTEGRATION | revoke URL_ID")
	}
	sub, args := args[0], args[1:]
	fs := newFlags(e, "urls "+sub, "", "Manage webhook URLs (works straight on the database). INTEGRATION is an id, a name or a schema.")
	asJSON := fs.Bool("json", false, "print JSON for scripts")
	one := func(rest []string, what string) (string, error) {
		if len(rest) != 1 {
			return "", usagef("usage: cioloader urls %s %s", sub, what)
		}
		return rest[0], nil
	}
	switch sub {
	case "generate":
		return withAdmin(ctx, e, fs, args, func(svc *admin.Service, rest []string) error {
			ref, err := one(rest, "INTEGRATION")
			if err != nil {
				return err
			}
			in, err := svc.Store.FindIntegration(ctx, ref)
			if err != nil {
				return err
			}
			u, err := svc.GenerateURL(ctx, in.ID)
			if err != nil {
				return err
			}
			if *asJSON {
				return printJSON(e.stdout, u)
			}
			fmt.Fprintf(e.stdout, "%s\n", u.URL)
			fmt.Fprintf(e.stderr, "URL %d for %s. This is the only time it is shown: paste it into Customer.io now.\n", u.ID, in.Schema)
			return nil
		})
	case "list":
		return withAdmin(ctx, e, fs, args, func(svc *admin.Service, rest []string) error {
			ref, err := one(rest, "INTEGRATION")
			if err != nil {
				return err
			}
			in, err := svc.Store.FindIntegration(ctx, ref)
			if err != nil {
				return err
			}
			list, err := svc.Store.ListURLs(ctx, in.ID)
			if err != nil {
				return err
			}
			if *asJSON {
				if list == nil {
					list = []domain.WebhookURL{}
				}
				return printJSON(e.stdout, list)
			}
			return printURLs(e.stdout, list)
		})
	case "revoke":
		return withAdmin(ctx, e, fs, args, func(svc *admin.Service, rest []string) error {
			ref, err := one(rest, "URL_ID")
			if err != nil {
				return err
			}
			id, err := strconv.ParseInt(ref, 10, 64)
			if err != nil {
				return usagef("URL_ID must be a number (see cioloader urls list)")
			}
			if err := svc.Store.RevokeURL(ctx, 0, id); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "revoked webhook URL %d\n", id)
			return nil
		})
	}
	return usagef("unknown urls subcommand %q: use generate, list or revoke", sub)
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

func runMigrate(ctx context.Context, e env, args []string) error {
	fs := newFlags(e, "migrate", "[up|down N|version]", "Apply (up, the default), roll back (down N) or show (version) the control-schema migrations.")
	cfg, err := loadConfig(fs, args, e)
	if err != nil {
		return err
	}
	return migrateCmd(ctx, e, cfg, fs.Args())
}

func migrateCmd(ctx context.Context, e env, cfg *config.Config, rest []string) error {
	action := "up"
	if len(rest) > 0 {
		action = rest[0]
	}
	log := slog.New(quietHandler{newLogger(cfg, e.stderr).Handler()})
	db, err := openDatabase(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer db.close()
	mg, err := postgres.NewMigrator(db.url)
	if err != nil {
		return err
	}
	defer mg.Close()
	switch {
	case action == "up" && len(rest) <= 1:
		err = mg.Up()
	case action == "down" && len(rest) == 2:
		n, perr := strconv.Atoi(rest[1])
		if perr != nil || n <= 0 {
			return usagef("migrate down needs a positive number of steps")
		}
		err = mg.Down(n)
	case action == "version" && len(rest) == 1:
	default:
		return usagef("usage: cioloader migrate [up|down N|version]")
	}
	if err != nil {
		return err
	}
	v, dirty, err := mg.Version()
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "control schema version %d (dirty=%t)\n", v, dirty)
	return nil
}
