package main

// One measured wrk run: CPU pinning and accounting, wrk's output, the log sink.

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/orchestry/orchestry/services/renderer/nginx"
)

// pin sets the CPU affinity of every thread of the processes.
func pin(cpus string, pids ...int) error {
	for _, p := range pids {
		if out, err := exec.Command("taskset", "-a", "-p", "-c", cpus, strconv.Itoa(p)).CombinedOutput(); err != nil {
			return fmt.Errorf("taskset -c %s %d: %v: %s", cpus, p, err, bytes.TrimSpace(out))
		}
	}
	return nil
}

// cpuTicks sums user and system time, in clock ticks, of the processes.
func cpuTicks(pids []int) int64 {
	var sum int64
	for _, p := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(b, ')')
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 13 {
			continue
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		s, _ := strconv.ParseInt(f[12], 10, 64)
		sum += u + s
	}
	return sum
}

// systemTicks reads the CPU time all CPUs spent busy, and stolen by the
// hypervisor, from /proc/stat, in clock ticks.
func systemTicks() (busy, steal int64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line)) // cpu user nice system idle iowait irq softirq steal ...
	if len(f) < 9 || f[0] != "cpu" {
		return 0, 0
	}
	n := make([]int64, 9)
	for i := 1; i < 9; i++ {
		n[i], _ = strconv.ParseInt(f[i], 10, 64)
	}
	return n[1] + n[2] + n[3] + n[6] + n[7], n[8]
}

// clockTicks is USER_HZ, 100 on every Linux architecture Go supports.
const clockTicks = 100

// measure runs wrk against the variant for d.
func measure(ctx context.Context, c config, wrkBin string, v *variant, back *nginx.Supervisor, backStatus string, s *sink, d time.Duration) (result, error) {
	front := v.frontPids()
	backW, _ := back.AcceptingWorkers()
	args := []string{"-t" + strconv.Itoa(c.threads), "-c" + strconv.Itoa(c.conns),
		"-d" + strconv.Itoa(int(d/time.Second)) + "s", "--latency", fmt.Sprintf("http://127.0.0.1:%d/", v.port)}
	name := wrkBin
	if c.pin {
		args = append([]string{"-c", c.loadCPUs, wrkBin}, args...)
		name = "taskset"
	}
	a0, err := accepts(ctx, backStatus)
	if err != nil {
		return result{}, err
	}
	self := []int{os.Getpid()}
	f0, b0, s0, l0 := cpuTicks(front), cpuTicks(backW), cpuTicks(self), s.count()
	busy0, steal0 := systemTicks()
	t0 := time.Now()
	cmd := exec.CommandContext(ctx, name, args...)
	out, err := cmd.CombinedOutput()
	wall := time.Since(t0)
	f1, b1, s1 := cpuTicks(front), cpuTicks(backW), cpuTicks(self)
	busy1, steal1 := systemTicks()
	if ctx.Err() != nil {
		return result{}, ctx.Err()
	}
	if err != nil {
		return result{}, fmt.Errorf("wrk: %v: %s", err, bytes.TrimSpace(out))
	}
	r, err := parseWrk(string(out))
	if err != nil {
		return result{}, err
	}
	time.Sleep(100 * time.Millisecond) // let the sink drain its socket
	r.logLines = s.count() - l0
	a1, err := accepts(ctx, backStatus)
	if err != nil {
		return result{}, err
	}
	r.upConns = a1 - a0 - 1 // the second reading's own connection
	r.cpuPerReq = float64(f1-f0) / clockTicks / float64(max(r.requests, 1))
	wrkCPU := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	ours := float64(f1-f0+b1-b0+s1-s0) + wrkCPU.Seconds()*clockTicks
	r.otherCPU = max(float64(busy1-busy0)-ours, 0) / clockTicks / wall.Seconds()
	r.steal = float64(steal1-steal0) / clockTicks / wall.Seconds()
	r.wallClock = wall
	r.frontCPU = float64(f1-f0) / clockTicks / wall.Seconds()
	r.backCPU = float64(b1-b0) / clockTicks / wall.Seconds()
	return r, nil
}

var (
	reRPS      = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	reP99      = regexp.MustCompile(`(?m)^\s*99%\s+([0-9.]+)(us|ms|s|m|h)\s*$`)
	reRequests = regexp.MustCompile(`(\d+) requests in`)
	reSockErrs = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
	reNon2xx   = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
)

// parseWrk reads requests/s, p99 (from --latency), the request count and
// socket errors from wrk's report; responses other than 2xx/3xx fail it.
func parseWrk(out string) (result, error) {
	var r result
	m := reRPS.FindStringSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("no Requests/sec in wrk's output:\n%s", out)
	}
	r.rps, _ = strconv.ParseFloat(m[1], 64)
	m = reP99.FindStringSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("no 99%% latency in wrk's output:\n%s", out)
	}
	n, _ := strconv.ParseFloat(m[1], 64)
	unit := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second, "m": time.Minute, "h": time.Hour}[m[2]]
	r.p99 = time.Duration(n * float64(unit))
	if m = reRequests.FindStringSubmatch(out); m != nil {
		r.requests, _ = strconv.ParseInt(m[1], 10, 64)
	}
	if m = reSockErrs.FindStringSubmatch(out); m != nil {
		for _, s := range m[1:] {
			e, _ := strconv.ParseInt(s, 10, 64)
			r.sockErrs += e
		}
	}
	if m = reNon2xx.FindStringSubmatch(out); m != nil {
		return r, fmt.Errorf("%s responses were not 2xx/3xx:\n%s", m[1], out)
	}
	if r.rps <= 0 {
		return r, fmt.Errorf("no requests completed:\n%s", out)
	}
	return r, nil
}

// sink is a UDP listener standing in for the metrics service's syslog
// listener: it reads and counts datagrams, nothing more.
type sink struct {
	conn *net.UDPConn
	n    atomic.Int64
}

func newSink() (*sink, error) {
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	_ = conn.SetReadBuffer(4 << 20)
	s := &sink{conn: conn}
	go func() {
		buf := make([]byte, 64<<10)
		for {
			if _, _, err := conn.ReadFromUDP(buf); err != nil {
				return
			}
			s.n.Add(1)
		}
	}()
	return s, nil
}

func (s *sink) addr() string { return s.conn.LocalAddr().String() }
func (s *sink) count() int64 { return s.n.Load() }

// Close stops the sink.
func (s *sink) Close() error { return s.conn.Close() }
