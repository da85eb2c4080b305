package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cioloader/cioloader/internal/domain"
)

// retentionLong is the help of `integrations set-retention`.
const retentionLong = "Set how many days of events an integration keeps: DAYS (1 to 36500), or none to keep everything.\n" +
	"An event is older than the window when its timestamp is (or, without a usable one, its arrival). " +
	"A running cioloader serve deletes such events from every table of the schema in the background, " +
	"about once a minute, in small batches; the first pass after a window is set builds the indexes it needs."

// retentionArgs checks INTEGRATION DAYS|none before the database is opened.
func retentionArgs(c *cobra.Command, args []string) error {
	if err := exactArgs(2)(c, args); err != nil {
		return err
	}
	_, err := parseRetention(args[1])
	return err
}

// parseRetention reads DAYS|none (nil: keep everything).
func parseRetention(s string) (*int, error) {
	if strings.EqualFold(s, "none") {
		return nil, nil
	}
	n, err := strconv.Atoi(s)
	if err == nil {
		err = domain.CheckRetentionDays(&n)
	}
	if err != nil {
		return nil, usagef("DAYS must be a whole number of days from 1 to %d, or none to keep everything (got %q)", domain.MaxRetentionDays, s)
	}
	return &n, nil
}

func integrationsSetRetention(ctx context.Context, c *adminCall) error {
	days, err := parseRetention(c.args[1])
	if err != nil {
		return err
	}
	in, err := c.svc.FindIntegration(ctx, c.args[0])
	if err != nil {
		return err
	}
	if in, err = c.svc.SetRetention(ctx, in.ID, days); err != nil {
		return err
	}
	if c.asJSON {
		return printJSON(c.e.stdout, in)
	}
	if days == nil {
		fmt.Fprintf(c.e.stdout, "integration %d %q keeps every event (no retention window)\n", in.ID, in.Name)
		return nil
	}
	fmt.Fprintf(c.e.stdout, "integration %d %q keeps %d days of events: a running cioloader serve deletes older ones in the background\n", in.ID, in.Name, *days)
	return nil
}
