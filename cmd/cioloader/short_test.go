package main

import "testing"

// skipShort skips a slow test (an embedded Postgres started and stopped) in
// `go test -short`, the quick loop; `make test` runs it.
func skipShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("slow: skipped with -short; make test runs it")
	}
}
