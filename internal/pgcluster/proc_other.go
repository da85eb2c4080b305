//go:build unix && !linux

package pgcluster

import (
	"errors"
	"syscall"
)

// tieToParent is a no-op without Linux's parent-death signal: a server
// started with StopWithProcess outlives a killed parent here.
func tieToParent(*syscall.SysProcAttr) {}

// processInfo reports whether pid exists; its working directory is unknown
// without /proc, and zombies count as alive.
func processInfo(pid int) (alive bool, cwd string, cwdKnown bool) {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM), "", false
}

// processesIn is unknown without /proc.
func processesIn(string) (pids []int, known bool) { return nil, false }
