package pgcluster

import "testing"

// skipShort skips a slow test (real processes, a browser, timeouts waited out) in
// `go test -short`, the quick loop; `make test` runs it.
func skipShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("slow: skipped with -short; make test runs it")
	}
}
