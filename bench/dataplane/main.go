// Command dataplane measures requests/s and p99 latency through the NGINX
// config Orchestry renders, against a hand-written config for the same
// backends (handwritten.conf), on the same NGINX binary, and against Caddy
// (built from its Go module by bench/caddy, with -caddy) as a peer, with the
// same load tool (wrk), in the same run.
//
// One app with four healthy instances and default settings (round robin)
// is rendered by the render package, as the renderer would for `make run`,
// and started with the nginx package's supervisor. The backends are a
// separate NGINX (backends.conf: one worker, four loopback ports, a fixed
// three-byte body). Each config under test runs in its own NGINX; the
// configs are measured in turn, interleaved round by round (the order
// rotates), and each gets the median of its rounds.
//
// Variants: the rendered config as the all-in-one deploys it (a JSON
// access log line per request over syslog/UDP, here to a sink in this
// process that reads and discards) and as the standalone renderer writes
// it without ORCHESTRY_NGINX_SYSLOG (a plain access log file); the
// hand-written one with the same syslog JSON log and with access_log off;
// Caddy's reverse_proxy with the same settings (caddy.conf: the four
// backends, round robin, kept-alive upstream connections, no access log);
// and, for diagnosis, the rendered one with its access_log line replaced by
// `access_log off`. Further diagnostic variants (see -variants) change one
// more thing in the rendered config each: the upstream's keepalive, and the
// request headers sent upstream. The rendered configs are otherwise run as
// rendered, on loopback only (render.Options.ListenIP).
//
// Per config it reports requests/s and p99 (wrk --latency), the CPU time
// the NGINX under test spends per request, the connections it opens to the
// backends (their stub_status), and the log lines the sink received. A run
// during which other processes were busy is measured again, within a
// budget.
//
// On two or more CPUs the NGINX under test (master and workers) is pinned
// to -front-cpus, and everything else (backends, wrk, this process) to
// -load-cpus, so the config under test has a core of its own.
//
// With -out it also writes its figures as JSON (package result) for the
// report generator (bench/report).
//
//	go build -o bin/caddy ./bench/caddy
//	go run ./bench/dataplane -mode full -caddy bin/caddy -out bench/results/raw
package main

import (
	"context"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/orchestry/orchestry/services/renderer/nginx"
	"github.com/orchestry/orchestry/services/renderer/render"
)

var (
	//go:embed handwritten.conf
	handwrittenConf string
	//go:embed backends.conf
	backendsConf string
)

// appName is the benchmarked app; backendCount its instances.
const (
	appName      = "bench"
	backendCount = 4
)

// How a variant logs its requests.
const (
	logSyslog = "syslog" // JSON line per request over syslog/UDP
	logFile   = "file"   // the renderer's plain access log file
	logOff    = "off"    // access_log off
)

// variant is one NGINX config under test.
type variant struct {
	key      string
	title    string
	rendered bool
	log      string
	edits    []edit // diagnostic changes to the rendered config

	caddy bool // Caddy, not NGINX

	sup     *nginx.Supervisor
	caddyP  *caddyProc
	port    int
	results []result
}

func allVariants() []*variant {
	return []*variant{
		{key: "rendered-syslog", title: "rendered, JSON log over syslog/UDP (as the all-in-one deploys it)", rendered: true, log: logSyslog},
		{key: "hand-syslog", title: "hand-written, same JSON log over syslog/UDP", log: logSyslog},
		{key: "rendered-file", title: "rendered, plain access log file (renderer without ORCHESTRY_NGINX_SYSLOG)", rendered: true, log: logFile},
		{key: "rendered-nolog", title: "rendered, its access_log replaced by `access_log off` (diagnostic)", rendered: true, log: logOff},
		{key: "hand-nolog", title: "hand-written, access_log off", log: logOff},
		{key: "caddy", title: "Caddy " + caddyVersion + " reverse_proxy, round robin, keepalive, no access log (peer)", log: logOff, caddy: true},
		// Not measured by default.
		{key: "rendered-syslog-ka64", title: "rendered-syslog with `keepalive 64` in its upstream instead of the rendered value (diagnostic)",
			rendered: true, log: logSyslog, edits: []edit{keepalive64}},
		{key: "rendered-nolog-ka64", title: "rendered-nolog with `keepalive 64` in its upstream instead of the rendered value (diagnostic)",
			rendered: true, log: logOff, edits: []edit{keepalive64}},
		{key: "rendered-nolog-ka64-hdr", title: "rendered-nolog-ka64 sending only Host and `Connection \"\"` upstream, like the hand-written one (diagnostic)",
			rendered: true, log: logOff, edits: []edit{keepalive64, forwardedOff, connectionEmpty}},
	}
}

// defaultVariants are measured unless -variants says otherwise.
const defaultVariants = "rendered-syslog,hand-syslog,rendered-file,rendered-nolog,hand-nolog"

// edit replaces the matches of pattern in a rendered file, which must be
// exactly n (0 means 1).
type edit struct {
	file, pattern, repl string
	n                   int
}

var (
	// accessLogOff turns the http-level access log off.
	accessLogOff = edit{render.MainFile, `(?m)^(\s*)access_log (?:[^o;]|o[^f;])[^;]*;$`, "${1}access_log off;", 1}
	// keepalive64 caches up to 64 idle upstream connections per worker.
	keepalive64 = edit{render.AppFile(appName), `(?m)^(\s*)keepalive \d+;$`, "${1}keepalive 64;", 1}
	// forwardedOff drops the X-Real-IP, X-Forwarded-* and Upgrade request
	// headers to the upstream.
	forwardedOff = edit{render.AppFile(appName), `(?m)^\s*proxy_set_header (?:X-Real-IP|X-Forwarded-\w+|Upgrade) [^;]*;\n`, "", 6}
	// connectionEmpty sends no Connection header upstream without the map.
	connectionEmpty = edit{render.AppFile(appName), `(?m)^(\s*)proxy_set_header Connection \$connection_upgrade;$`, `${1}proxy_set_header Connection "";`, 1}
)

// ratios are the comparisons reported, when both variants ran: numerator,
// denominator, what it tells.
var ratios = [][3]string{
	{"rendered-syslog", "hand-syslog", "as deployed, like for like (target ≥ 0.95)"},
	{"rendered-nolog", "hand-nolog", "rendered directives alone, no log on either side"},
	{"rendered-syslog", "hand-nolog", "as deployed against the leanest hand-written config"},
	{"rendered-nolog", "caddy", "rendered directives alone against Caddy (no log on either side)"},
	{"rendered-syslog", "caddy", "as deployed against Caddy without an access log"},
	{"hand-nolog", "caddy", "hand-written NGINX against Caddy, no log on either side"},
	{"rendered-file", "hand-nolog", "renderer's file log against the leanest hand-written config"},
	{"rendered-syslog-ka64", "hand-syslog", "diagnostic: as deployed, but keepalive 64"},
	{"rendered-nolog-ka64", "hand-nolog", "diagnostic: no log, keepalive 64"},
	{"rendered-nolog-ka64-hdr", "hand-nolog", "diagnostic: no log, keepalive 64, hand-written's upstream headers"},
}

// result is one wrk run of one variant.
type result struct {
	rps       float64
	p99       time.Duration
	requests  int64
	sockErrs  int64
	frontCPU  float64 // share of one core used by the NGINX under test's workers
	backCPU   float64 // same for the backends' worker
	cpuPerReq float64 // CPU seconds of the NGINX under test's workers per request
	upConns   int64   // connections the backends accepted during the run
	otherCPU  float64 // CPU used meanwhile by everything outside the benchmark, in cores
	steal     float64 // CPU the hypervisor took meanwhile, in cores
	logLines  int64   // datagrams the sink received during the run
	wallClock time.Duration
}

type config struct {
	duration, warmup       time.Duration
	rounds, conns, threads int
	workers                int
	pin                    bool
	frontCPUs, loadCPUs    string // CPU lists
	wrk, nginxBin          string
	keep                   bool
	maxOther               float64
	caddyBin               string
	out, mode              string
}

func main() {
	var c config
	var variants string
	flag.StringVar(&c.mode, "mode", "full", "quick or full: quick shortens the defaults of -rounds (2), -duration (3s) and -warmup (1s)")
	flag.DurationVar(&c.duration, "duration", 0, "length of each measured wrk run (default 5s)")
	flag.DurationVar(&c.warmup, "warmup", 0, "unmeasured wrk run per config before the first round (default 2s)")
	flag.IntVar(&c.rounds, "rounds", 0, "measured runs per config, interleaved (default 5)")
	flag.IntVar(&c.conns, "connections", 64, "wrk connections (-c)")
	flag.IntVar(&c.threads, "threads", 1, "wrk threads (-t)")
	flag.IntVar(&c.workers, "workers", 1, "worker_processes of the NGINX under test (both configs); GOMAXPROCS of Caddy")
	flag.BoolVar(&c.pin, "pin", true, "pin the NGINX (or Caddy) under test to -front-cpus and the rest to -load-cpus (needs 2+ CPUs)")
	flag.StringVar(&c.frontCPUs, "front-cpus", "0", "CPU list (taskset -c) of the NGINX under test")
	flag.StringVar(&c.loadCPUs, "load-cpus", "1", "CPU list of the backends, wrk and this process")
	flag.StringVar(&variants, "variants", "", "configs to measure (default: "+defaultVariants+", and caddy with -caddy): "+variantKeys())
	flag.StringVar(&c.wrk, "wrk", "wrk", "wrk executable")
	flag.StringVar(&c.nginxBin, "nginx", "", "nginx executable (default: nginx on PATH, else /usr/sbin/nginx)")
	flag.StringVar(&c.caddyBin, "caddy", "", "caddy executable built by bench/caddy (go build -o bin/caddy ./bench/caddy); empty: no Caddy")
	flag.StringVar(&c.out, "out", "", "directory for the JSON result (dataplane.json); empty: none")
	flag.Float64Var(&c.maxOther, "max-other", 0.15, "measure a run again (budget: one extra round) when other processes took more than this share of a core meanwhile")
	flag.BoolVar(&c.keep, "keep", false, "keep the temporary NGINX prefixes (configs, logs) and print where")
	flag.Parse()
	quick := c.mode == "quick"
	if !quick && c.mode != "full" {
		fmt.Fprintf(os.Stderr, "-mode must be quick or full, not %q\n", c.mode)
		os.Exit(2)
	}
	dflt := func(d *time.Duration, q, f time.Duration) {
		if *d == 0 {
			*d = map[bool]time.Duration{true: q, false: f}[quick]
		}
	}
	dflt(&c.duration, 3*time.Second, 5*time.Second)
	dflt(&c.warmup, time.Second, 2*time.Second)
	if c.rounds == 0 {
		c.rounds = map[bool]int{true: 2, false: 5}[quick]
	}
	if variants == "" {
		variants = defaultVariants
		if c.caddyBin != "" {
			variants += ",caddy"
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, c, variants); err != nil {
		fmt.Fprintln(os.Stderr, "dataplane:", err)
		stop()
		os.Exit(1)
	}
}

func run(ctx context.Context, c config, names string) error {
	if c.rounds < 1 || c.rounds > 100 || c.duration < time.Second || c.duration%time.Second != 0 || c.warmup < time.Second || c.warmup%time.Second != 0 || c.conns < 1 || c.threads < 1 || c.threads > c.conns || c.workers < 1 {
		return errors.New("bad flags: need 1 <= rounds <= 100, duration and warmup whole seconds >= 1s, 1 <= threads <= connections, workers >= 1")
	}
	vs, err := pick(names)
	if err != nil {
		return err
	}
	bin, err := nginx.Binary(c.nginxBin)
	if err != nil {
		return err
	}
	wrkBin, err := exec.LookPath(c.wrk)
	if err != nil {
		return fmt.Errorf("wrk not found (scripts/ensure-wrk installs it): %w", err)
	}
	if c.pin && runtime.NumCPU() < 2 {
		fmt.Println("one CPU: not pinning")
		c.pin = false
	}
	if c.pin {
		if _, err := exec.LookPath("taskset"); err != nil {
			return fmt.Errorf("taskset (util-linux) not found; run with -pin=false: %w", err)
		}
		// Threads made later inherit the affinity of the thread making them.
		if err := pin(c.loadCPUs, os.Getpid()); err != nil {
			return err
		}
	}

	for _, v := range vs {
		if v.caddy && c.caddyBin == "" {
			return errors.New("variant caddy needs -caddy (go build -o bin/caddy ./bench/caddy)")
		}
	}
	started := time.Now()
	root, err := os.MkdirTemp("", "dataplane")
	if err != nil {
		return err
	}
	// Workers run as an unprivileged user when NGINX is started as root.
	if err := os.Chmod(root, 0o755); err != nil {
		return err
	}
	if c.keep {
		fmt.Println("NGINX prefixes kept under", root)
	} else {
		defer os.RemoveAll(root)
	}

	log := zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr}).Level(zerolog.WarnLevel).With().Timestamp().Logger()
	var sups []*nginx.Supervisor
	defer func() {
		for _, s := range sups {
			if err := s.Stop(10 * time.Second); err != nil {
				fmt.Fprintln(os.Stderr, "dataplane: stop nginx:", err)
			}
		}
	}()

	ports, err := freePorts(backendCount + 1 + 2*len(vs))
	if err != nil {
		return err
	}
	backendAddrs := make([]string, backendCount)
	for i := range backendAddrs {
		backendAddrs[i] = fmt.Sprintf("127.0.0.1:%d", ports[i])
	}
	backStatus := fmt.Sprintf("http://127.0.0.1:%d/", ports[backendCount])
	ports = ports[backendCount+1:]

	sink, err := newSink()
	if err != nil {
		return err
	}
	defer sink.Close()

	// Backends.
	prefix := filepath.Join(root, "backends")
	conf, err := writeTemplate(prefix, backendsConf, map[string]any{"Prefix": prefix, "Listen": backendAddrs, "Status": backStatus[len("http://") : len(backStatus)-1]})
	if err != nil {
		return err
	}
	back := nginx.NewSupervisor(bin, prefix, conf, log)
	if err := start(ctx, back, conf); err != nil {
		return fmt.Errorf("backends: %w", err)
	}
	sups = append(sups, back)
	for _, a := range backendAddrs {
		if err := waitOK(ctx, "http://"+a+"/"); err != nil {
			return fmt.Errorf("backend %s: %w", a, err)
		}
	}
	backWorkers, err := workersOf(back, 1)
	if err != nil {
		return fmt.Errorf("backends: %w", err)
	}
	if c.pin {
		if err := pin(c.loadCPUs, append([]int{back.Pid()}, backWorkers...)...); err != nil {
			return err
		}
	}

	// Configs under test.
	for i, v := range vs {
		v.port = ports[2*i]
		prefix := filepath.Join(root, v.key)
		if v.caddy {
			p, err := startCaddy(ctx, c, prefix, v.port, backendAddrs)
			if err != nil {
				return fmt.Errorf("%s: %w", v.key, err)
			}
			v.caddyP = p
			defer p.stop()
			if err := checkSpread(ctx, v.port); err != nil {
				return fmt.Errorf("%s: %w", v.key, err)
			}
			continue
		}
		var conf string
		if v.rendered {
			conf, err = renderedConfig(prefix, v, ports[2*i+1], backendAddrs, c.workers, sink.addr())
		} else {
			conf, err = handConfig(prefix, v, backendAddrs, c.workers, sink.addr())
		}
		if err != nil {
			return fmt.Errorf("%s: %w", v.key, err)
		}
		v.sup = nginx.NewSupervisor(bin, prefix, conf, log)
		if err := start(ctx, v.sup, conf); err != nil {
			return fmt.Errorf("%s: %w", v.key, err)
		}
		sups = append(sups, v.sup)
		if err := checkSpread(ctx, v.port); err != nil {
			return fmt.Errorf("%s: %w", v.key, err)
		}
		if c.pin {
			ws, err := workersOf(v.sup, c.workers)
			if err != nil {
				return fmt.Errorf("%s: %w", v.key, err)
			}
			if err := pin(c.frontCPUs, append([]int{v.sup.Pid()}, ws...)...); err != nil {
				return err
			}
		}
	}

	header(c, bin, wrkBin, len(vs))
	for _, v := range vs {
		if _, err := measure(ctx, c, wrkBin, v, back, backStatus, sink, c.warmup); err != nil {
			return fmt.Errorf("%s warm-up: %w", v.key, err)
		}
	}
	// A run during which other processes took more than -max-other of a
	// core is measured again at once, once, within a budget of one extra
	// round.
	retries := len(vs)
	for round := range c.rounds {
		for i := range vs {
			v := vs[(i+round)%len(vs)]
			for try := 0; ; try++ {
				r, err := measure(ctx, c, wrkBin, v, back, backStatus, sink, c.duration)
				if err != nil {
					return fmt.Errorf("%s round %d: %w", v.key, round+1, err)
				}
				busy := r.otherCPU+r.steal > c.maxOther
				again := busy && retries > 0 && try == 0
				note := ""
				if again {
					retries--
					note = "  (busy machine: measured again)"
				}
				fmt.Printf("round %d  %-16s %6.0f req/s  p99 %-8s  under test: CPU %3.0f%%, %4.1fµs/req, %5.1f upstream conns/1k req  backends: CPU %3.0f%%  other load: %3.0f%% (steal %2.0f%%)  socket errors %d%s\n",
					round+1, v.key, r.rps, fmtDur(r.p99), 100*r.frontCPU, 1e6*r.cpuPerReq, perK(r), 100*r.backCPU, 100*r.otherCPU, 100*r.steal, r.sockErrs, note)
				if !again {
					v.results = append(v.results, r)
					break
				}
			}
		}
	}
	for _, s := range sups {
		if n := s.Restarts(); n > 0 {
			return fmt.Errorf("an NGINX restarted %d times during the run; figures are not valid", n)
		}
	}
	for _, v := range vs {
		if v.caddyP != nil && v.caddyP.exited() {
			return errors.New("caddy exited during the run; figures are not valid")
		}
	}
	report(vs, c.maxOther)
	if c.out != "" {
		return writeJSON(c, vs, bin, started)
	}
	return nil
}

func variantKeys() string {
	var keys []string
	for _, v := range allVariants() {
		keys = append(keys, v.key)
	}
	return strings.Join(keys, ",")
}

func pick(names string) ([]*variant, error) {
	all := allVariants()
	var out []*variant
	for _, n := range strings.Split(names, ",") {
		n = strings.TrimSpace(n)
		i := slices.IndexFunc(all, func(v *variant) bool { return v.key == n })
		if i < 0 {
			return nil, fmt.Errorf("unknown variant %q", n)
		}
		if slices.Contains(out, all[i]) {
			return nil, fmt.Errorf("variant %q named twice", n)
		}
		out = append(out, all[i])
	}
	return out, nil
}
