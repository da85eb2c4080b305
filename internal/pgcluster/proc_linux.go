package pgcluster

import (
	"bytes"
	"os"
	"strconv"
	"syscall"
)

// tieToParent makes the kernel send postgres a fast-shutdown request (SIGINT)
// when the thread that started it dies. Go applies it after switching
// credentials (a credential change would clear it), and Go does not retire
// threads except ones locked with runtime.LockOSThread, which Start never uses.
func tieToParent(attr *syscall.SysProcAttr) {
	attr.Pdeathsig = syscall.SIGINT
}

// processInfo reports whether pid is a live (not zombie) process and, when
// /proc lets us see it, its working directory (a postmaster's is its data
// directory).
func processInfo(pid int) (alive bool, cwd string, cwdKnown bool) {
	p := "/proc/" + strconv.Itoa(pid)
	stat, err := os.ReadFile(p + "/stat")
	if err != nil {
		return false, "", true
	}
	// The state follows the parenthesised command name, which may itself hold ") ".
	if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) {
		if s := stat[i+2]; s == 'Z' || s == 'X' {
			return false, "", true
		}
	}
	cwd, err = os.Readlink(p + "/cwd")
	if err != nil {
		return true, "", false
	}
	return true, cwd, true
}

// processesIn lists live processes working in dir (a postmaster and its
// backends all have the data directory as working directory).
func processesIn(dir string) (pids []int, known bool) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, false
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if alive, cwd, ok := processInfo(pid); alive && ok && samePath(cwd, dir) {
			pids = append(pids, pid)
		}
	}
	return pids, true
}
