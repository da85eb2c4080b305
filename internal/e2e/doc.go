// Package e2e tests the cioloader binary as an operator runs it: real
// processes on real Postgres, killed with SIGKILL, stopped with SIGTERM, cut
// off from their database, run as two replicas on one database, and run on
// the embedded Postgres. The tests live in *_test.go; TestMain builds the
// binary once per test run.
package e2e
