package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cioloader/cioloader/internal/admin"
	"github.com/cioloader/cioloader/internal/domain"
)

func forgetCmd(e env) *cobra.Command {
	var req admin.ErasureRequest
	var list bool
	cmd := adminCommand(e, "forget INTEGRATION (--email E | --customer-id ID | --cio-id C)... | --list INTEGRATION",
		"erase a person's events everywhere (GDPR, CCPA); --list shows past erasures",
		"Erase a person (GDPR, CCPA): delete every stored event that names them from INTEGRATION's data, its subtables, "+
			"rudder_events and _sdc_rejected, in one transaction, and keep hashed tombstones so re-delivered events of theirs "+
			"are dropped for CIOLOADER_ERASURE_TOMBSTONE_TTL. Flags may be repeated; an event matches any of them. "+
			"Emails compare case-insensitively, ids exactly. With --list, print the integration's erasure records.",
		func(c *cobra.Command, args []string) error { return forgetArgs(c, args, req, list) },
		func(ctx context.Context, c *adminCall) error { return forget(ctx, c, req, list) })
	cmd.Flags().StringArrayVar(&req.Emails, "email", nil, "the person's email address (identifiers.email, email_address, an email recipient)")
	cmd.Flags().StringArrayVar(&req.CustomerIDs, "customer-id", nil, "the person's id (identifiers.id, the deprecated customer_id)")
	cmd.Flags().StringArrayVar(&req.CioIDs, "cio-id", nil, "the person's Customer.io id (identifiers.cio_id)")
	cmd.Flags().BoolVar(&list, "list", false, "print the integration's erasure records instead")
	return cmd
}

func forgetArgs(c *cobra.Command, args []string, req admin.ErasureRequest, list bool) error {
	named := len(req.Emails) + len(req.CustomerIDs) + len(req.CioIDs)
	switch {
	case len(args) != 1:
		return usagef("usage: cioloader forget INTEGRATION --email E (run cioloader forget --help)")
	case list && named > 0:
		return usagef("--list takes no --email, --customer-id or --cio-id")
	case !list && named == 0:
		return usagef("name the person: --email, --customer-id or --cio-id (run cioloader forget --help)")
	}
	return nil
}

func forget(ctx context.Context, c *adminCall, req admin.ErasureRequest, list bool) error {
	in, err := c.svc.FindIntegration(ctx, c.args[0])
	if err != nil {
		return err
	}
	if list {
		l, err := c.svc.ListErasures(ctx, in.ID)
		if err != nil {
			return err
		}
		if c.asJSON {
			return printJSON(c.e.stdout, l)
		}
		return printErasures(c.e.stdout, l)
	}
	er, err := c.svc.Erase(ctx, in.ID, req, admin.ByCLI)
	if err != nil {
		return err
	}
	if c.asJSON {
		return printJSON(c.e.stdout, er)
	}
	fmt.Fprintf(c.e.stdout, "erasure %d on %s: deleted %s; re-delivered events of this person are dropped until %s\n",
		er.ID, in.Schema, deletedSummary(er.RowsDeleted), er.TombstonesUntil.UTC().Format(time.RFC3339))
	return nil
}

// deletedSummary is "data 3, rudder_events 3, …" in table order, tables with rows first.
func deletedSummary(m map[string]int64) string {
	var parts []string
	for _, t := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %d", t, m[t]))
	}
	if len(parts) == 0 {
		return "nothing"
	}
	return strings.Join(parts, ", ")
}

func printErasures(w io.Writer, list []domain.Erasure) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tREQUESTED\tBY\tIDENTIFIERS\tCOMPLETED\tDELETED")
	for _, er := range list {
		done := "no (run it again)"
		if er.CompletedAt != nil {
			done = er.CompletedAt.UTC().Format(time.RFC3339)
		}
		hashes := make([]string, len(er.IdentifierHashes))
		for i, h := range er.IdentifierHashes {
			hashes[i] = h[:min(12, len(h))] + "…"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", er.ID, er.RequestedAt.UTC().Format(time.RFC3339), er.RequestedBy,
			strings.Join(hashes, " "), done, deletedSummary(er.RowsDeleted))
	}
	return tw.Flush()
}
