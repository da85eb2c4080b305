package main

import (
	"context"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/cioloader/cioloader/internal/admin"
	"github.com/cioloader/cioloader/internal/config"
	"github.com/cioloader/cioloader/internal/postgres"
)

func migrateCmd(e env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "migrate [up|down N|version]",
		Short: "apply, roll back or show control-schema migrations",
		Long:  "Apply (up, the default), roll back (down N) or show (version) the control-schema migrations.\n\n" + dbNote,
		Args:  migrateArgs,
	}
	asJSON := cmd.Flags().Bool("json", false, "print JSON for scripts")
	return configured(cmd, e, func(ctx context.Context, cfg *config.Config, args []string) error {
		return migrate(ctx, e, cfg, args, *asJSON)
	})
}

func migrate(ctx context.Context, e env, cfg *config.Config, args []string, asJSON bool) error {
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
	store, err := postgres.Open(ctx, db.url, cliStoreConfig(cfg, 2), log, nil) // connects only when up needs it
	if err != nil {
		return fmt.Errorf("database: %w", err)
	}
	defer store.Close()
	svc := &admin.Service{Store: store, Migrations: mg}
	var st admin.MigrationStatus
	action := "up"
	if len(args) > 0 {
		action = args[0]
	}
	switch action {
	case "up":
		st, err = svc.MigrateUp(ctx)
	case "down":
		steps, _ := strconv.Atoi(args[1])
		st, err = svc.MigrateDown(steps)
	default:
		st, err = svc.MigrationVersion()
	}
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(e.stdout, st)
	}
	fmt.Fprintf(e.stdout, "control schema version %d (dirty=%t; this binary's latest is %d)\n", st.Version, st.Dirty, st.Latest)
	return nil
}

// migrateArgs accepts nothing, up, version or down N.
func migrateArgs(_ *cobra.Command, args []string) error {
	switch {
	case len(args) == 0, args[0] == "up" && len(args) == 1, args[0] == "version" && len(args) == 1:
		return nil
	case args[0] == "down" && len(args) == 2:
		if n, err := strconv.Atoi(args[1]); err != nil || n <= 0 {
			return usagef("migrate down needs a positive number of steps, not %q", args[1])
		}
		return nil
	}
	return usagef("usage: cioloader migrate [up|down N|version] (run cioloader migrate --help)")
}
