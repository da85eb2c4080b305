package main

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/spf13/cobra"
)

// healthcheckCmd probes a URL, for container healthchecks on images without curl.
func healthcheckCmd(_ env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "healthcheck",
		Short: "exit 0 when the server answers 200 (container healthchecks)",
		Long:  "Exit 0 when URL answers 200 within the timeout (for container healthchecks).",
		Args:  noArgs("healthcheck takes no arguments"),
	}
	url := cmd.Flags().String("url", "http://127.0.0.1:8080/readyz", "URL to probe")
	timeout := cmd.Flags().Duration("timeout", 2*time.Second, "how long to wait")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error { return healthcheck(cmd.Context(), *url, *timeout) }
	return cmd
}

func healthcheck(ctx context.Context, url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return usagef("bad --url: %v", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s answered %d", url, resp.StatusCode)
	}
	return nil
}
