package main

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// runHealthcheck probes a URL, for container healthchecks on images without curl.
func runHealthcheck(ctx context.Context, e env, args []string) error {
	fs := newFlags(e, "healthcheck", "", "Exit 0 when URL answers 200 within the timeout (for container healthchecks).")
	url := fs.String("url", "http://127.0.0.1:8080/readyz", "URL to probe")
	timeout := fs.Duration("timeout", 2*time.Second, "how long to wait")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usagef("healthcheck takes no arguments (run cioloader healthcheck --help)")
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *url, nil)
	if err != nil {
		return usagef("bad --url: %v", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s answered %d", *url, resp.StatusCode)
	}
	return nil
}
