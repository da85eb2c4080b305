package bench

import (
	"bufio"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// clockTick is the kernel's USER_HZ, the unit of CPU times in /proc/PID/stat
// (100 on every Linux architecture Go supports).
const clockTick = 10 * time.Millisecond

// cpuSample is cumulative CPU time (user + system) of the three processes
// sharing the machine during a scenario.
type cpuSample struct {
	server, postgres, load time.Duration
	machine                time.Duration // every CPU's busy time, from /proc/stat
}

// sampleCPU reads the server's CPU time, the Postgres cluster's (its
// postmaster, whose counts include its reaped children, plus every live
// child: other clusters on the machine are left out), and this process's own
// (the load generator). postmaster is 0 when Postgres is not on this machine.
func sampleCPU(serverPID, postmaster int) cpuSample {
	s := cpuSample{server: procCPU(strconv.Itoa(serverPID), false), load: procCPU("self", false), machine: machineBusy()}
	if postmaster == 0 {
		return s
	}
	pm := strconv.Itoa(postmaster)
	s.postgres = procCPU(pm, true)
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		if procField(filepath.Base(d), 1) == pm {
			s.postgres += procCPU(filepath.Base(d), false)
		}
	}
	return s
}

// isPostgres reports whether pid is a process named postgres on this machine.
func isPostgres(pid int) bool {
	comm, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	return err == nil && strings.TrimSpace(string(comm)) == "postgres"
}

// procField is field n+3 of /proc/PID/stat (0: state, 1: ppid), "" when unreadable.
func procField(pid string, n int) string {
	f := statFields(pid)
	if len(f) <= n {
		return ""
	}
	return f[n]
}

// statFields are the fields of /proc/PID/stat after the command name (which
// is in parentheses and may hold spaces), from field 3 (state) on.
func statFields(pid string) []string {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return nil
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(string(b[i+1:]))
}

func (s cpuSample) sub(o cpuSample) cpuSample {
	return cpuSample{server: s.server - o.server, postgres: s.postgres - o.postgres, load: s.load - o.load, machine: s.machine - o.machine}
}

// others is the CPU time used by everything else on the machine.
func (s cpuSample) others() time.Duration {
	return max(0, s.machine-s.server-s.postgres-s.load)
}

// machineBusy is the busy time of all CPUs (the first line of /proc/stat:
// everything but idle and iowait).
func machineBusy() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	var ticks int64
	for i, v := range f[1:] {
		if i == 3 || i == 4 || i >= 8 { // idle, iowait; guest times are already in user
			continue
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		ticks += n
	}
	return time.Duration(ticks) * clockTick
}

// procCPU is utime+stime of /proc/PID/stat, plus cutime+cstime (reaped
// children) when children is set.
func procCPU(pid string, children bool) time.Duration {
	f := statFields(pid)
	// f[0] is field 3 (state); utime..cstime are fields 14..17.
	if len(f) < 15 {
		return 0
	}
	last := 12
	if children {
		last = 14
	}
	var ticks int64
	for _, v := range f[11 : last+1] {
		n, _ := strconv.ParseInt(v, 10, 64)
		ticks += n
	}
	return time.Duration(ticks) * clockTick
}

// batchStats is what the server's /metrics says of its group commit:
// batches committed (cioloader_batch_events_count) and the events committed
// by the size of their batch (cioloader_batched_events_total).
type batchStats struct {
	batches float64
	events  map[string]float64 // batch-size label → events
}

// readBatchStats scrapes the server's /metrics.
func readBatchStats(base string) batchStats {
	st := batchStats{events: map[string]float64{}}
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return st
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(val, 64)
		if err != nil {
			continue
		}
		if name == "cioloader_batch_events_count" {
			st.batches = v
		} else if label, ok := strings.CutPrefix(name, `cioloader_batched_events_total{batch="`); ok {
			st.events[strings.TrimSuffix(label, `"}`)] = v
		}
	}
	return st
}

func (s batchStats) sub(o batchStats) batchStats {
	d := batchStats{batches: s.batches - o.batches, events: map[string]float64{}}
	for k, v := range s.events {
		d.events[k] = v - o.events[k]
	}
	return d
}

func (s batchStats) total() float64 {
	var t float64
	for _, v := range s.events {
		t += v
	}
	return t
}

// meanEvents is the mean number of events per committed batch.
func (s batchStats) meanEvents() float64 {
	if s.batches == 0 {
		return 0
	}
	return s.total() / s.batches
}

// shareIn32Plus is the share of events committed in batches of 32 or more.
func (s batchStats) shareIn32Plus() float64 {
	t := s.total()
	if t == 0 {
		return 0
	}
	return (s.events["32-127"] + s.events["128+"]) / t
}
