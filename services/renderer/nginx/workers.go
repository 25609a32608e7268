package nginx

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// workerTitle is the process title of an NGINX worker. A worker told to stop
// gracefully closes its listening sockets and retitles itself "... is
// shutting down", so a worker with exactly this title still accepts
// connections.
const workerTitle = "nginx: worker process"

// AcceptingWorkers returns the pids of the master's workers that still
// accept connections. ok is false when the process table cannot say (no
// /proc, or no master).
func (s *Supervisor) AcceptingWorkers() (pids []int, ok bool) {
	master := s.Pid()
	if master == 0 {
		return nil, false
	}
	return acceptingWorkers("/proc", master)
}

// acceptingWorkers scans procfs for children of master titled workerTitle.
func acceptingWorkers(procfs string, master int) ([]int, bool) {
	entries, err := os.ReadDir(procfs)
	if err != nil {
		return nil, false
	}
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join(procfs, e.Name(), "stat"))
		if err != nil || parentOf(stat) != master {
			continue // gone meanwhile, or not a child
		}
		cmdline, err := os.ReadFile(filepath.Join(procfs, e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if title := strings.TrimRight(string(bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '})), " "); title == workerTitle {
			out = append(out, pid)
		}
	}
	return out, true
}

// parentOf reads the ppid from a /proc/<pid>/stat line: "pid (comm) state
// ppid ..."; comm may hold spaces and parentheses, so fields are counted
// from the last ')'.
func parentOf(stat []byte) int {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}
