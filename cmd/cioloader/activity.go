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
)

func activityCmd(e env) *cobra.Command {
	var hours int
	cmd := adminCommand(e, "activity INTEGRATION", "show the events an integration received per hour",
		"Show the events INTEGRATION received per hour (UTC) over the last --hours hours, the current one included, "+
			"by object type, then by event name. The counts are kept at ingest and flushed about once a second; "+
			"they count deliveries received (a retried event counts again).",
		func(c *cobra.Command, args []string) error { return activityArgs(c, args, hours) },
		func(ctx context.Context, c *adminCall) error { return activity(ctx, c, hours) })
	cmd.Flags().IntVar(&hours, "hours", admin.DefaultActivityHours, fmt.Sprintf("hours to show, 1 to %d", admin.MaxActivityHours))
	return cmd
}

// activityArgs checks the arguments before the database is opened.
func activityArgs(c *cobra.Command, args []string, hours int) error {
	if err := exactArgs(1)(c, args); err != nil {
		return err
	}
	if hours < 1 || hours > admin.MaxActivityHours {
		return usagef("--hours must be between 1 and %d, not %d", admin.MaxActivityHours, hours)
	}
	return nil
}

func activity(ctx context.Context, c *adminCall, hours int) error {
	in, err := c.svc.FindIntegration(ctx, c.args[0])
	if err != nil {
		return err
	}
	a, err := c.svc.Activity(ctx, in.ID, hours)
	if err != nil {
		return err
	}
	if c.asJSON {
		return printJSON(c.e.stdout, a)
	}
	fmt.Fprintf(c.e.stdout, "%s (%s): %d events in the last %d hours\n\n", in.Name, in.Schema, a.Total, a.Hours)
	if err := printBuckets(c.e.stdout, a); err != nil {
		return err
	}
	fmt.Fprintln(c.e.stdout)
	return printEventCounts(c.e.stdout, a.Events)
}

func printBuckets(w io.Writer, a admin.Activity) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HOUR (UTC)\tEVENTS\tBY OBJECT TYPE")
	for _, b := range a.Buckets {
		var parts []string
		for _, t := range a.ObjectTypes {
			if n := b.ByObjectType[t.ObjectType]; n > 0 {
				parts = append(parts, fmt.Sprintf("%s %d", objectTypeLabel(t.ObjectType), n))
			}
		}
		if len(parts) == 0 {
			parts = []string{"-"}
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\n", b.Hour.UTC().Format("2006-01-02 15:04"), b.Count, strings.Join(parts, ", "))
	}
	return tw.Flush()
}

func printEventCounts(w io.Writer, list []admin.EventCount) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "EVENT\tEVENTS\tLAST RECEIVED")
	for _, e := range list {
		fmt.Fprintf(tw, "%s\t%d\t%s\n", e.Event, e.Count, e.LastAt.UTC().Format(time.RFC3339))
	}
	return tw.Flush()
}

// objectTypeLabel names the object type of events that had none.
func objectTypeLabel(t string) string {
	if t == "" {
		return "(no object_type)"
	}
	return t
}
