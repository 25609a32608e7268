// Command probebench measures the health service's probe capacity: how
// many targets one core keeps probed at a 1 s period, what share of the
// core that takes, and the heap each target costs.
//
// It starts a real NGINX on loopback (a temp prefix; `return 200` on one
// address per target, 127.1.x.y, so every target is its own connection as
// in production) and an embedded NATS JetStream in a child process, then
// runs the whole health Service in this process with GOMAXPROCS=1 against
// N targets. After the first probe of every target has been stored, it
// measures for -duration: probes/s as NGINX counted them (stub_status),
// new connections/s, this process's CPU (user+sys from getrusage over wall
// time, as a share of one core) and memory per target (live heap after GC,
// and goroutine stacks, against the figures before any target).
//
//	go run ./services/health/cmd/probebench -targets 1000,5000,10000
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/orchestry/orchestry/pkg/events"
	"github.com/orchestry/orchestry/services/health"
)

// perApp is how many instances each benchmark app has.
const perApp = 100

func main() {
	sizes := flag.String("targets", "1000,5000,10000", "comma-separated target counts")
	period := flag.Duration("period", time.Second, "probe period of every target")
	duration := flag.Duration("duration", 15*time.Second, "measured time per size")
	procs := flag.Int("procs", 1, "GOMAXPROCS of the health service")
	workers := flag.Int("workers", 0, "ORCHESTRY_HEALTH_WORKERS (0: its default)")
	addrs := flag.Int("addrs", 0, "distinct target addresses (0: one per target)")
	nginxWorkers := flag.Int("nginx-workers", 1, "NGINX worker_processes")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the measured time of the largest size here")
	natsDir := flag.String("nats-server", "", "internal: run the embedded NATS server with its store here")
	flag.Parse()
	if *natsDir != "" {
		runNATS(*natsDir)
		return
	}
	var ns []int
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			fail(fmt.Errorf("bad size %q", s))
		}
		ns = append(ns, n)
	}
	nAddrs := *addrs
	if nAddrs <= 0 {
		nAddrs = slicesMax(ns)
	}
	if nAddrs > 40000 {
		fail(errors.New("at most 40000 addresses"))
	}
	// NGINX holds a socket per address and a connection per target; it
	// cannot raise its file limit above the hard limit without
	// CAP_SYS_RESOURCE, and accept fails beyond it.
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && uint64(nAddrs+slicesMax(ns)+64) > lim.Max {
		fmt.Fprintf(os.Stderr, "probebench: warning: %d addresses + %d targets exceed the open-file limit %d; use -addrs\n", nAddrs, slicesMax(ns), lim.Max)
	}
	runtime.GOMAXPROCS(*procs)

	dir, err := os.MkdirTemp("", "probebench")
	if err != nil {
		fail(err)
	}
	defer os.RemoveAll(dir)
	ng, err := startNginx(dir, nAddrs, *nginxWorkers)
	if err != nil {
		fail(err)
	}
	defer ng.stop()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	fmt.Printf("health service: GOMAXPROCS=%d, period %s, %s measured per size; NGINX: %d worker(s), %d addresses; %s, %d cores\n\n",
		*procs, *period, *duration, *nginxWorkers, nAddrs, runtime.Version(), runtime.NumCPU())
	fmt.Println("| targets | probes/s | goal/s | new conns/s | CPU (share of one core) | CPU µs/probe | heap/target | stack/target | heap+stack total |")
	fmt.Println("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	largest := slicesMax(ns)
	for _, n := range ns {
		prof := ""
		if n == largest {
			prof = *cpuProfile
		}
		r, err := measure(ctx, dir, ng, n, nAddrs, *period, *duration, *workers, prof)
		if err != nil {
			fail(fmt.Errorf("targets=%d: %w", n, err))
		}
		goal := float64(n) / period.Seconds()
		fmt.Printf("| %d | %.0f | %.0f | %.0f | %.1f%% | %.0f | %s | %s | %s |\n", n, r.probes, goal, r.conns,
			100*r.cpu, 1e6*r.cpu/r.probes, bytes(r.heapPerTarget), bytes(r.stackPerTarget), bytes(r.total))
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "probebench:", err)
	os.Exit(1)
}

func slicesMax(s []int) int {
	m := 0
	for _, v := range s {
		m = max(m, v)
	}
	return m
}

func bytes(b float64) string {
	switch {
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", b/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KiB", b/(1<<10))
	}
	return fmt.Sprintf("%.0f B", b)
}

type result struct {
	probes, conns, cpu            float64
	heapPerTarget, stackPerTarget float64
	total                         float64
}

// measure runs a fresh NATS and health Service against n targets.
func measure(ctx context.Context, dir string, ng *nginxProc, n, nAddrs int, period, duration time.Duration, workers int, profile string) (result, error) {
	var r result
	natsURL, stopNATS, err := startNATS(filepath.Join(dir, fmt.Sprintf("nats-%d", n)))
	if err != nil {
		return r, err
	}
	defer stopNATS()
	nc, err := nats.Connect(natsURL)
	if err != nil {
		return r, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return r, err
	}
	var cfg health.Config
	if err := env.Parse(&cfg); err != nil {
		return r, err
	}
	cfg.Replica = "bench"
	if workers > 0 {
		cfg.Workers = workers
	}
	svc, err := health.New(nc, cfg, zerolog.New(os.Stderr).Level(zerolog.WarnLevel))
	if err != nil {
		return r, err
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- svc.Run(sctx) }()
	defer func() {
		cancel()
		<-done
	}()
	if err := until(ctx, 30*time.Second, "service joined", func() bool { return svc.Members() != nil }); err != nil {
		return r, err
	}
	baseHeap, baseStack := memory()

	// The targets, perApp instances per app.
	for a := 0; a*perApp < n; a++ {
		rs := events.RoutingState{
			App: events.App{
				Metadata:    events.Metadata{Name: fmt.Sprintf("bench-%05d", a)},
				HealthCheck: &events.HealthCheck{Path: "/", PeriodSeconds: period.Seconds(), TimeoutSeconds: 1},
			},
			Revision: 1,
		}
		for i := a * perApp; i < min(n, (a+1)*perApp); i++ {
			rs.Instances = append(rs.Instances, events.Instance{ID: fmt.Sprintf("i%d", i), IP: addrIP(i % nAddrs), Port: ng.port})
		}
		pctx, pcancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := events.Publish(pctx, js, "probebench", events.RoutingChanged(rs.App.Metadata.Name), rs)
		pcancel()
		if err != nil {
			return r, err
		}
	}
	// Warm-up: every target's first state stored (one KV write each).
	kv, err := js.KeyValue(ctx, events.BucketHealth)
	if err != nil {
		return r, err
	}
	if err := until(ctx, 2*time.Minute, "first probe of every target stored", func() bool {
		sctx, c := context.WithTimeout(ctx, 5*time.Second)
		defer c()
		st, err := kv.Status(sctx)
		return err == nil && st.Values() >= uint64(n)
	}); err != nil {
		return r, err
	}
	sleep(ctx, 2*period)

	req0, acc0, err := ng.counters()
	if err != nil {
		return r, err
	}
	if profile != "" {
		f, err := os.Create(profile)
		if err != nil {
			return r, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return r, err
		}
	}
	ru0 := rusage()
	t0 := time.Now()
	sleep(ctx, duration)
	ru1 := rusage()
	if profile != "" {
		pprof.StopCPUProfile()
	}
	wall := time.Since(t0)
	req1, acc1, err := ng.counters()
	if err != nil {
		return r, err
	}
	if ctx.Err() != nil {
		return r, ctx.Err()
	}
	r.probes = float64(req1-req0) / wall.Seconds()
	r.conns = float64(acc1-acc0) / wall.Seconds()
	r.cpu = (ru1 - ru0).Seconds() / wall.Seconds()
	h, st := memory()
	r.total = float64(h + st)
	r.heapPerTarget = (float64(h) - float64(baseHeap)) / float64(n)
	r.stackPerTarget = (float64(st) - float64(baseStack)) / float64(n)
	return r, nil
}

// addrIP is the loopback address of target address i: 127.1.x.y.
func addrIP(i int) string { return fmt.Sprintf("127.1.%d.%d", i/250, i%250+1) }

// memory is the live heap after GC and the goroutine stacks in use (an
// http.Transport keeps two goroutines per pooled connection; the prober
// keeps none).
func memory() (heap, stack uint64) {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc, m.StackInuse
}

// rusage is this process's CPU time so far, user plus system.
func rusage() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		fail(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func until(ctx context.Context, d time.Duration, what string, cond func() bool) error {
	deadline := time.Now().Add(d)
	for !cond() {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}

// startNATS runs this program as an embedded NATS server in a child
// process, so its CPU is not the health service's.
func startNATS(dir string) (url string, stop func(), err error) {
	cmd := exec.Command(os.Args[0], "-nats-server", dir)
	cmd.Env = append(os.Environ(), "GOMAXPROCS=1")
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	in, err := cmd.StdinPipe()
	if err != nil {
		return "", nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop = func() {
		in.Close() // the child stops when its stdin closes
		waited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(waited) }()
		select {
		case <-waited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-waited
		}
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		stop()
		return "", nil, fmt.Errorf("nats child: %w", err)
	}
	return strings.TrimSpace(line), stop, nil
}

// runNATS is the child: a JetStream server on a random loopback port, its
// URL on stdout, until stdin closes.
func runNATS(dir string) {
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: dir, NoSigs: true})
	if err != nil {
		fail(err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		fail(errors.New("nats not ready within 10s"))
	}
	fmt.Println(s.ClientURL())
	_, _ = io.Copy(io.Discard, os.Stdin)
	s.Shutdown()
	s.WaitForShutdown()
}

// nginxProc is the probe target: NGINX answering 200 on every address.
type nginxProc struct {
	cmd    *exec.Cmd
	port   int
	status string
}

func startNginx(dir string, nAddrs, workers int) (*nginxProc, error) {
	bin, err := exec.LookPath("nginx")
	if err != nil {
		bin = "/usr/sbin/nginx"
	}
	prefix := filepath.Join(dir, "nginx")
	if err := os.MkdirAll(filepath.Join(prefix, "logs"), 0o755); err != nil {
		return nil, err
	}
	statusAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	portAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	_, p, _ := net.SplitHostPort(portAddr)
	port, _ := strconv.Atoi(p)
	var b strings.Builder
	fmt.Fprintf(&b, `worker_processes %d;
worker_rlimit_nofile %d;
pid %s;
error_log %s warn;
daemon off;
events { worker_connections %d; }
http {
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    server {
        listen %s;
        location = /status { stub_status; }
    }
    server {
`, workers, 2*nAddrs+4096, filepath.Join(prefix, "nginx.pid"), filepath.Join(prefix, "logs", "error.log"), 2*nAddrs+4096, statusAddr)
	for i := range nAddrs {
		fmt.Fprintf(&b, "        listen %s:%d;\n", addrIP(i), port)
	}
	b.WriteString("        location / { return 200; }\n    }\n}\n")
	conf := filepath.Join(prefix, "nginx.conf")
	if err := os.WriteFile(conf, []byte(b.String()), 0o644); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-p", prefix, "-c", conf, "-e", filepath.Join(prefix, "logs", "error.log"))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	ng := &nginxProc{cmd: cmd, port: port, status: "http://" + statusAddr + "/status"}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, _, err := ng.counters(); err == nil {
			return ng, nil
		} else if time.Now().After(deadline) {
			ng.stop()
			log, _ := os.ReadFile(filepath.Join(prefix, "logs", "error.log"))
			return nil, fmt.Errorf("nginx not answering within 30s: %v\n%s", err, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// counters reads NGINX's total requests and accepted connections.
func (ng *nginxProc) counters() (requests, accepts uint64, err error) {
	resp, err := http.Get(ng.status)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, 0, err
	}
	// Active connections: N \n server accepts handled requests \n A H R
	lines := strings.Split(string(body), "\n")
	if len(lines) < 3 {
		return 0, 0, fmt.Errorf("stub_status: %q", body)
	}
	f := strings.Fields(lines[2])
	if len(f) != 3 {
		return 0, 0, fmt.Errorf("stub_status: %q", body)
	}
	accepts, err1 := strconv.ParseUint(f[0], 10, 64)
	requests, err2 := strconv.ParseUint(f[2], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, 0, err
	}
	return requests, accepts, nil
}

// stop ends NGINX gracefully (SIGQUIT), killing its group after 10s.
func (ng *nginxProc) stop() {
	_ = ng.cmd.Process.Signal(syscall.SIGQUIT)
	waited := make(chan struct{})
	go func() { _ = ng.cmd.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-ng.cmd.Process.Pid, syscall.SIGKILL)
		<-waited
	}
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}
