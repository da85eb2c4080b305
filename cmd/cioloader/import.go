package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/cioloader/cioloader/internal/app"
	"github.com/cioloader/cioloader/internal/cioapi"
	"github.com/cioloader/cioloader/internal/domain"
	"github.com/cioloader/cioloader/internal/importer"
	"github.com/cioloader/cioloader/internal/ingest"
)

// appAPIKeyEnv holds the Customer.io App API key (never a flag value: flags
// show up in ps and shell history).
const appAPIKeyEnv = "CIOLOADER_CIO_APP_API_KEY"

func importCmd(e env) *cobra.Command {
	return groupCmd("import", "Import history: past deliveries from Customer.io's App API, or files of webhook bodies",
		importCustomerIOCmd(e), importFileCmd(e))
}

// importFlags are the flags both import commands take.
type importFlags struct {
	quiet bool
}

func importCustomerIOCmd(e env) *cobra.Command {
	var since, until, region, apiURL, keyFile string
	var flags importFlags
	var opt importer.CustomerIO
	var key, base string
	cmd := adminCommand(e, "customerio INTEGRATION", "import past deliveries from Customer.io's App API",
		"Import INTEGRATION's past deliveries from Customer.io's App API (GET /v1/messages): each recorded metric of a delivery becomes one "+
			"reporting-webhook event, written to every table and view as a webhook event is. Windows of at most 6 months of creation time, "+
			"pages of 1000, under 10 requests a second, with back-off on 429 and 5xx. Occurrences already stored (from the webhook, or an earlier "+
			"import) are skipped, so running it again adds nothing; an interrupted import started again continues where it stopped.\n\n"+
			"The App API key comes from "+appAPIKeyEnv+" or --app-api-key-file; it is never logged or stored.\n"+
			"Default range: from as far back as Customer.io answers up to the integration's first webhook event (or now).",
		func(c *cobra.Command, args []string) error {
			if err := exactArgs(1)(c, args); err != nil {
				return err
			}
			var err error
			if opt, key, base, err = customerIOOptions(e, since, until, region, apiURL, keyFile); err != nil {
				return err
			}
			return nil
		},
		func(ctx context.Context, c *adminCall) error {
			client, err := cioapi.New(cioapi.Config{BaseURL: base, Key: key, Region: opt.Region})
			if err != nil {
				return usagef("%v", err)
			}
			opt.API = client
			return runImport(ctx, c, flags, func(ctx context.Context, im *importer.Importer, in domain.Integration, progress func(importer.Status)) (domain.Import, error) {
				return im.CustomerIO(ctx, in, opt, progress)
			})
		})
	f := cmd.Flags()
	f.StringVar(&since, "since", "", "first creation date to import (YYYY-MM-DD or RFC 3339; default: as far back as Customer.io answers)")
	f.StringVar(&until, "until", "", "import deliveries created before this date (default: the integration's first webhook event, or now)")
	f.StringVar(&region, "region", "us", "the workspace's region: us or eu")
	f.StringVar(&apiURL, "api-url", "", "App API base URL, for a proxy or a test server (default: the region's)")
	f.StringVar(&keyFile, "app-api-key-file", "", "read the App API key from this file (default: $"+appAPIKeyEnv+")")
	f.BoolVar(&flags.quiet, "quiet", false, "no progress bar")
	return cmd
}

// customerIOOptions checks the flags before the database is opened.
func customerIOOptions(e env, since, until, region, apiURL, keyFile string) (opt importer.CustomerIO, key, base string, err error) {
	base, ok := cioapi.Regions[region]
	if !ok {
		return opt, "", "", usagef("--region must be us or eu, not %q", region)
	}
	opt.Region = region
	if opt.Since, err = parseDate("--since", since); err != nil {
		return opt, "", "", err
	}
	if opt.Until, err = parseDate("--until", until); err != nil {
		return opt, "", "", err
	}
	if opt.Since != nil && opt.Until != nil && !opt.Since.Before(*opt.Until) {
		return opt, "", "", usagef("--since must be before --until")
	}
	if apiURL != "" {
		if !strings.HasPrefix(apiURL, "http://") && !strings.HasPrefix(apiURL, "https://") {
			return opt, "", "", usagef("--api-url must be an http:// or https:// URL")
		}
		base = apiURL
	}
	key = strings.TrimSpace(e.getenv(appAPIKeyEnv))
	if keyFile != "" {
		b, err := os.ReadFile(keyFile)
		if err != nil {
			return opt, "", "", usagef("--app-api-key-file: %v", err)
		}
		key = strings.TrimSpace(string(b))
	}
	if key == "" {
		return opt, "", "", usagef("no App API key: set %s or pass --app-api-key-file (Customer.io: Settings → API Credentials → App API Keys)", appAPIKeyEnv)
	}
	return opt, key, base, nil
}

// parseDate reads a flag's date: YYYY-MM-DD (midnight UTC) or RFC 3339.
func parseDate(flag, s string) (*time.Time, error) {
	if s == "" {
		return nil, nil
	}
	for _, layout := range []string{time.DateOnly, time.RFC3339} {
		if t, err := time.Parse(layout, s); err == nil {
			t = t.UTC()
			return &t, nil
		}
	}
	return nil, usagef("%s %q is not a date: use YYYY-MM-DD or RFC 3339", flag, s)
}

func importFileCmd(e env) *cobra.Command {
	var flags importFlags
	cmd := adminCommand(e, "file INTEGRATION PATH...", "load files of reporting-webhook bodies through the ingest path",
		"Load files of Customer.io reporting-webhook bodies into INTEGRATION, through the same path as a webhook delivery: each file holds "+
			"one object, a JSON array of objects, or one object per line (NDJSON); - reads standard input. Each file is checked whole first, "+
			"so a malformed one writes nothing. An interrupted import of the same files started again continues from each file's offset "+
			"(standard input cannot be resumed).",
		func(c *cobra.Command, args []string) error {
			if len(args) < 2 {
				return usagef("usage: %s INTEGRATION PATH... (run %s --help)", c.CommandPath(), c.CommandPath())
			}
			return nil
		},
		func(ctx context.Context, c *adminCall) error {
			return runImport(ctx, c, flags, func(ctx context.Context, im *importer.Importer, in domain.Integration, progress func(importer.Status)) (domain.Import, error) {
				return im.Files(ctx, in, c.args[1:], c.e.stdin, progress)
			})
		})
	cmd.Flags().BoolVar(&flags.quiet, "quiet", false, "no progress bar")
	return cmd
}

// importRun runs one kind of import with an importer.
type importRun func(ctx context.Context, im *importer.Importer, in domain.Integration, progress func(importer.Status)) (domain.Import, error)

// runImport resolves INTEGRATION, starts the ingest path (a group-commit
// batcher over the store, and the store's flushers for the activity counts),
// runs the import with a progress bar on stderr, and prints its summary.
func runImport(ctx context.Context, c *adminCall, flags importFlags, run importRun) error {
	in, err := c.svc.FindIntegration(ctx, c.args[0])
	if err != nil {
		return err
	}
	if in.DisabledAt != nil {
		return domain.Errorf(domain.ErrInvalid, "integration %q is deleted: nothing is imported into it", in.Name)
	}
	cfg := c.cfg
	batcher, err := ingest.NewBatcher(c.store, importer.BatcherConfig(cfg.BatchMaxEvents, cfg.BatchStall), slog.New(slog.DiscardHandler), nil)
	if err != nil {
		return err
	}
	bctx, stopBatcher := context.WithCancel(context.WithoutCancel(ctx))
	sctx, stopStore := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Go(func() { _ = batcher.Run(bctx) })
	wg.Go(func() { _ = c.store.Run(sctx) }) // flushes the activity counts, last at its end
	defer func() { stopBatcher(); stopStore(); wg.Wait() }()

	im := &importer.Importer{Store: c.store, Submit: batcher, Limits: app.FlattenLimits(cfg)}
	bar := newImportBar(c.e.stderr, flags.quiet, in.Schema)
	start := time.Now()
	imp, err := run(ctx, im, in, bar.update)
	bar.done(err)
	if err != nil {
		if imp.ID != 0 {
			return fmt.Errorf("import %d of %s: %w (%s)", imp.ID, in.Schema, err, importer.Summary(imp))
		}
		return err
	}
	if c.asJSON {
		return printJSON(c.e.stdout, imp)
	}
	fmt.Fprintf(c.e.stdout, "import %d of %s done in %s: %s\n", imp.ID, in.Schema, time.Since(start).Round(time.Millisecond), importer.Summary(imp))
	return nil
}

// importBar is the progress bar: a spinner with counts while the total is
// unknown, a bar over windows or bytes once it is.
type importBar struct {
	bar *progressbar.ProgressBar
	w   io.Writer
}

func newImportBar(w io.Writer, quiet bool, schema string) *importBar {
	if quiet {
		return &importBar{}
	}
	return &importBar{w: w, bar: progressbar.NewOptions64(-1,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription("import "+schema),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSpinnerType(14),
	)}
}

func (b *importBar) update(st importer.Status) {
	if b.bar == nil {
		return
	}
	desc := fmt.Sprintf("%s %d/%s · %d deliveries · %d events written · %d already stored", unitKind(st.Unit), st.UnitNo, unitsOf(st.Units), st.Deliveries, st.EventsWritten, st.EventsExisting)
	b.bar.Describe(desc)
	switch {
	case st.Total > 0:
		b.bar.ChangeMax64(st.Total)
		_ = b.bar.Set64(st.Bytes)
	case st.Units > 0:
		b.bar.ChangeMax64(int64(st.Units))
		_ = b.bar.Set64(int64(st.UnitNo))
	default:
		_ = b.bar.Add(1)
	}
}

func (b *importBar) done(err error) {
	if b.bar == nil {
		return
	}
	_ = b.bar.Clear()
	if err == nil {
		_ = b.bar.Finish()
		fmt.Fprintln(b.w)
	}
}

func unitKind(unit string) string {
	if strings.Contains(unit, "/") && strings.Count(unit, "Z") == 2 {
		return "window"
	}
	return "file"
}

func unitsOf(n int) string {
	if n == 0 {
		return "?"
	}
	return fmt.Sprint(n)
}
