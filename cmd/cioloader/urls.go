package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cioloader/cioloader/internal/domain"
)

func urlsCmd(e env) *cobra.Command {
	return groupCmd("urls", "Manage webhook URLs",
		adminCommand(e, "generate INTEGRATION", "make a webhook URL (printed this once: paste it into Customer.io); at most 2 active per integration", "", exactArgs(1), urlsGenerate),
		adminCommand(e, "list INTEGRATION", "list an integration's webhook URLs (token prefixes only), newest first", "", exactArgs(1), urlsList),
		adminCommand(e, "revoke URL_ID", "revoke a webhook URL (its id from urls list): it stops accepting events at once", "", urlIDArg, urlsRevoke),
	)
}

func urlsGenerate(ctx context.Context, c *adminCall) error {
	in, err := c.svc.FindIntegration(ctx, c.args[0])
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
	in, err := c.svc.FindIntegration(ctx, c.args[0])
	if err != nil {
		return err
	}
	list, err := c.svc.ListURLs(ctx, in.ID)
	if err != nil {
		return err
	}
	if c.asJSON {
		return printJSON(c.e.stdout, list)
	}
	return printURLs(c.e.stdout, list)
}

// urlIDArg accepts one positive URL id.
func urlIDArg(c *cobra.Command, args []string) error {
	if err := exactArgs(1)(c, args); err != nil {
		return err
	}
	if id, err := strconv.ParseInt(args[0], 10, 64); err != nil || id <= 0 {
		return usagef("URL_ID must be a webhook URL's number (see cioloader urls list INTEGRATION), not %q", args[0])
	}
	return nil
}

func urlsRevoke(ctx context.Context, c *adminCall) error {
	id, _ := strconv.ParseInt(c.args[0], 10, 64)
	if err := c.svc.RevokeURL(ctx, 0, id); err != nil {
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
