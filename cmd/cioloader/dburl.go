package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/cioloader/cioloader/internal/admin"
	"github.com/cioloader/cioloader/internal/config"
	"github.com/cioloader/cioloader/internal/pgcluster"
	"github.com/cioloader/cioloader/internal/postgres"
)

// dbURLCmd prints the database URL the other commands use, so that
// psql "$(cioloader db-url)" reaches the same database.
func dbURLCmd(e env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "db-url",
		Short: "print the database URL in use (starts the embedded Postgres if needed)",
		Args:  noArgs("db-url takes no arguments"),
		Long: "Print the database URL in use: DATABASE_URL when set, else the embedded Postgres's (under CIOLOADER_DATA_DIR/pg), " +
			"starting it if needed and leaving it running; cioloader serve joins it later. For example: psql \"$(cioloader db-url)\".",
	}
	tcp := cmd.Flags().Bool("tcp", false, "embedded Postgres: the TCP URL on 127.0.0.1 instead of the unix socket one")
	asJSON := cmd.Flags().Bool("json", false, `print {"url": ..., "embedded": ...}`)
	role := cmd.Flags().String("role", "", "the URL for reader ROLE (see cioloader access grant) instead of cioloader's own, which is for operators; "+
		"no password in it: the embedded Postgres asks none; with DATABASE_URL, give the role's own (PGPASSWORD or ~/.pgpass)")
	cmd.Long += " With --role ROLE, the same server and database as ROLE, for analysts: psql \"$(cioloader db-url --role analyst)\"."
	return configured(cmd, e, func(ctx context.Context, cfg *config.Config, _ []string) error {
		if *role != "" {
			if err := admin.CheckRoleName(*role); err != nil {
				return usagef("--role: %v", err)
			}
		}
		return dbURL(ctx, e, cfg, *tcp, *asJSON, *role)
	})
}

func dbURL(ctx context.Context, e env, cfg *config.Config, tcp, asJSON bool, role string) error {
	var err error
	url := cfg.DatabaseURL
	var db *database
	if url == "" {
		if db, err = startEmbedded(ctx, cfg, cliLogger(cfg, e, "db-url")); err != nil {
			return err
		}
		url = db.url
		if tcp {
			url = db.cluster.TCPURL(pgcluster.DefaultDatabase)
		}
	}
	if role != "" {
		if url, err = postgres.ReaderURL(url, role, ""); err != nil {
			return err
		}
	}
	if asJSON {
		if err := printJSON(e.stdout, map[string]any{"url": url, "embedded": db != nil}); err != nil {
			return err
		}
	} else {
		fmt.Fprintln(e.stdout, url)
	}
	if db != nil && !db.adopted {
		stop := filepath.Join(db.cluster.BinDir(), "pg_ctl") + " stop -D " + db.cluster.DataDir()
		if os.Geteuid() == 0 { // the server runs as the postgres user, and pg_ctl refuses root
			stop = "su postgres -s /bin/sh -c '" + stop + "'"
		}
		fmt.Fprintf(e.stderr, "started the embedded Postgres in %s; it keeps running: cioloader serve joins it and stops it when it exits, or stop it with %s\n",
			db.cluster.Dir(), stop)
	}
	return nil
}
