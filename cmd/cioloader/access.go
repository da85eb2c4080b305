package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/cioloader/cioloader/internal/domain"
)

// accessCmd manages analysts' read-only roles (SPEC 10.14).
func accessCmd(e env) *cobra.Command {
	var create bool
	grant := adminCommand(e, "grant INTEGRATION ROLE [--create]",
		"let Postgres role ROLE read every table and view of INTEGRATION, now and later, and nothing else",
		"Let Postgres role ROLE read every table and view of INTEGRATION's schema: USAGE on the schema, SELECT on what is "+
			"there now, and SELECT on whatever cioloader creates there later (subtables, views, summaries), on every replica. "+
			"Nothing else: no write, no CREATE, no control schema, no other integration. With --create, ROLE is made a LOGIN "+
			"role with a generated password, and its connection URL is printed this once (cioloader's role needs CREATEROLE); "+
			"without it ROLE must exist. A role that could do more than read (superuser, CREATEROLE, cioloader's own role, an "+
			"owner or writer in the schema) is refused.",
		exactArgs(2), func(ctx context.Context, c *adminCall) error { return accessGrant(ctx, c, create) })
	grant.Flags().BoolVar(&create, "create", false, "create ROLE as a LOGIN role with a generated password; print its URL once")
	return groupCmd("access", "Read-only access for analysts",
		grant,
		adminCommand(e, "revoke INTEGRATION ROLE", "take back every right grant gave ROLE on INTEGRATION (the role itself stays)", "", exactArgs(2), accessRevoke),
		adminCommand(e, "list INTEGRATION", "list the roles that can read INTEGRATION's schema, as the database's grants show", "", exactArgs(1), accessList),
	)
}

func accessGrant(ctx context.Context, c *adminCall, create bool) error {
	in, err := c.svc.FindIntegration(ctx, c.args[0])
	if err != nil {
		return err
	}
	role := c.args[1]
	nr, err := c.svc.GrantReader(ctx, in.ID, role, create)
	if err != nil {
		return err
	}
	switch {
	case c.asJSON && nr != nil:
		return printJSON(c.e.stdout, nr)
	case c.asJSON:
		return printJSON(c.e.stdout, map[string]string{"role": role, "schema": in.Schema})
	case nr != nil:
		fmt.Fprintln(c.e.stdout, nr.URL)
		fmt.Fprintf(c.e.stderr, "created role %s (LOGIN) and granted it read access to %s. This is the only time its password is shown: "+
			"give the URL to the analyst now (psql \"URL\"; a BI tool takes the same user, password, host, port and database).\n", role, in.Schema)
	default:
		fmt.Fprintf(c.e.stdout, "granted role %s read access to %s: every table and view now, and what cioloader creates there later\n", role, in.Schema)
	}
	return nil
}

func accessRevoke(ctx context.Context, c *adminCall) error {
	in, err := c.svc.FindIntegration(ctx, c.args[0])
	if err != nil {
		return err
	}
	role := c.args[1]
	if err := c.svc.RevokeReader(ctx, in.ID, role); err != nil {
		return err
	}
	if c.asJSON {
		return printJSON(c.e.stdout, map[string]string{"role": role, "schema": in.Schema})
	}
	fmt.Fprintf(c.e.stdout, "revoked role %s's access to %s; the role stays (DROP ROLE %s removes it)\n", role, in.Schema, role)
	return nil
}

func accessList(ctx context.Context, c *adminCall) error {
	in, err := c.svc.FindIntegration(ctx, c.args[0])
	if err != nil {
		return err
	}
	list, err := c.svc.ListReaders(ctx, in.ID)
	if err != nil {
		return err
	}
	if c.asJSON {
		return printJSON(c.e.stdout, list)
	}
	return printReaders(c.e.stdout, list)
}

func printReaders(w io.Writer, list []domain.Reader) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ROLE\tLOGIN\tREADS\tLATER\tSTATUS")
	yes := map[bool]string{true: "yes", false: "no"}
	for _, r := range list {
		status := "granted"
		if !r.Complete {
			status = "partial (run access grant again, or revoke)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d of %d\t%s\t%s\n", r.Role, yes[r.CanLogin], r.Readable, r.Relations, yes[r.Future], status)
	}
	return tw.Flush()
}
