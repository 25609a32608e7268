// Package procs reads NGINX's processes from /proc: the master started on a
// prefix, its workers (and old workers still shutting down after a reload),
// and their resident memory.
package procs

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Proc is one process: its pid, parent, command line (as ps shows it) and
// resident set size in bytes.
type Proc struct {
	Pid, PPid int
	Cmd       string
	RSS       int64
}

// ShuttingDown is the title of an old NGINX worker that finishes its
// requests after a reload.
const ShuttingDown = "nginx: worker process is shutting down"

// All reads every process of the machine.
func All() ([]Proc, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("procs: %w", err)
	}
	var out []Proc
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		p, ok := read(pid)
		if ok {
			out = append(out, p)
		}
	}
	return out, nil
}

func read(pid int) (Proc, bool) {
	dir := filepath.Join("/proc", strconv.Itoa(pid))
	stat, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return Proc{}, false
	}
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return Proc{}, false
	}
	f := strings.Fields(string(stat[i+1:])) // state ppid ...
	if len(f) < 2 {
		return Proc{}, false
	}
	ppid, _ := strconv.Atoi(f[1])
	cmd, _ := os.ReadFile(filepath.Join(dir, "cmdline"))
	p := Proc{Pid: pid, PPid: ppid, Cmd: strings.TrimSpace(string(bytes.ReplaceAll(cmd, []byte{0}, []byte{' '})))}
	status, _ := os.ReadFile(filepath.Join(dir, "status"))
	for line := range strings.SplitSeq(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			p.RSS = kb << 10
		}
	}
	return p, true
}

// Tree returns the process pid and its children (NGINX's workers are the
// master's children).
func Tree(pid int) ([]Proc, error) {
	all, err := All()
	if err != nil {
		return nil, err
	}
	var out []Proc
	for _, p := range all {
		if p.Pid == pid || p.PPid == pid {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("procs: no process %d", pid)
	}
	return out, nil
}

// MasterPid reads the pid file NGINX writes under its prefix (logs/nginx.pid
// or nginx.pid, whichever exists).
func MasterPid(prefix string) (int, error) {
	var last error
	for _, p := range []string{filepath.Join(prefix, "logs", "nginx.pid"), filepath.Join(prefix, "nginx.pid")} {
		b, err := os.ReadFile(p)
		if err != nil {
			last = err
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			return 0, fmt.Errorf("procs: pid file %s: %w", p, err)
		}
		return pid, nil
	}
	return 0, fmt.Errorf("procs: no NGINX pid file under %s: %w", prefix, last)
}

// RSS is the resident memory of the master and all its workers, in bytes.
func RSS(master int) (int64, error) {
	ps, err := Tree(master)
	if err != nil {
		return 0, err
	}
	var sum int64
	for _, p := range ps {
		sum += p.RSS
	}
	return sum, nil
}

// PSS is the proportional set size of the master and all its workers, in
// bytes (from /proc/<pid>/smaps_rollup): unlike RSS, a page the master
// shares with its workers after fork counts once.
func PSS(master int) (int64, error) {
	ps, err := Tree(master)
	if err != nil {
		return 0, err
	}
	var sum int64
	for _, p := range ps {
		b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(p.Pid), "smaps_rollup"))
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
			continue // an old worker that exited since Tree listed it
		}
		if err != nil {
			return 0, fmt.Errorf("procs: %w", err)
		}
		for line := range strings.SplitSeq(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "Pss:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
				sum += kb << 10
			}
		}
	}
	return sum, nil
}

// ShuttingDownWorkers counts the master's old workers still shutting down.
func ShuttingDownWorkers(master int) (int, error) {
	ps, err := Tree(master)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, p := range ps {
		if p.Pid != master && strings.HasPrefix(p.Cmd, ShuttingDown) {
			n++
		}
	}
	return n, nil
}
