// Command throughputbench measures requests/s and p99 latency through the
// NGINX config Orchestry renders, against a hand-written config for the
// same backends (handwritten.conf), on the same NGINX binary, with the same
// load tool (wrk), in the same run.
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
//	go run ./services/renderer/cmd/throughputbench -rounds 5 -duration 5s
package main

import (
	"bytes"
	"context"
	_ "embed"
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
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"text/template"
	"time"

	"github.com/rs/zerolog"

	"github.com/orchestry/orchestry/pkg/events"
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

	sup     *nginx.Supervisor
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
	frontCPUs, loadCPUs    string
	wrk, nginxBin          string
	keep                   bool
	maxOther               float64
}

func main() {
	var c config
	var variants string
	flag.DurationVar(&c.duration, "duration", 5*time.Second, "length of each measured wrk run")
	flag.DurationVar(&c.warmup, "warmup", 2*time.Second, "unmeasured wrk run per config before the first round")
	flag.IntVar(&c.rounds, "rounds", 5, "measured runs per config, interleaved")
	flag.IntVar(&c.conns, "connections", 64, "wrk connections (-c)")
	flag.IntVar(&c.threads, "threads", 1, "wrk threads (-t)")
	flag.IntVar(&c.workers, "workers", 1, "worker_processes of the NGINX under test (both configs)")
	flag.BoolVar(&c.pin, "pin", true, "pin the NGINX under test to -front-cpus and the rest to -load-cpus (needs 2+ CPUs)")
	flag.StringVar(&c.frontCPUs, "front-cpus", "0", "CPU list (taskset -c) of the NGINX under test")
	flag.StringVar(&c.loadCPUs, "load-cpus", "1", "CPU list of the backends, wrk and this process")
	flag.StringVar(&variants, "variants", defaultVariants, "configs to measure: "+variantKeys())
	flag.StringVar(&c.wrk, "wrk", "wrk", "wrk executable")
	flag.StringVar(&c.nginxBin, "nginx", "", "nginx executable (default: nginx on PATH, else /usr/sbin/nginx)")
	flag.Float64Var(&c.maxOther, "max-other", 0.15, "measure a run again (budget: one extra round) when other processes took more than this share of a core meanwhile")
	flag.BoolVar(&c.keep, "keep", false, "keep the temporary NGINX prefixes (configs, logs) and print where")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, c, variants); err != nil {
		fmt.Fprintln(os.Stderr, "throughputbench:", err)
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

	root, err := os.MkdirTemp("", "throughputbench")
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
				fmt.Fprintln(os.Stderr, "throughputbench: stop nginx:", err)
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
	report(vs, c.maxOther)
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

// renderedConfig renders the app with the render package into
// prefix/conf, as the renderer would, and returns the main config's path.
func renderedConfig(prefix string, v *variant, status int, backends []string, workers int, syslog string) (string, error) {
	s := events.RoutingState{
		App: events.App{
			Metadata: events.Metadata{Name: appName},
			Spec:     events.AppSpec{Networking: events.Networking{ExternalPort: v.port}},
		},
		Revision: 1,
	}
	for i, a := range backends {
		ap, err := net.ResolveTCPAddr("tcp", a)
		if err != nil {
			return "", err
		}
		s.Instances = append(s.Instances, events.Instance{ID: fmt.Sprintf("b%d", i+1), IP: ap.IP.String(), Port: ap.Port})
	}
	opts := render.Options{
		Prefix:          prefix,
		StatusListen:    fmt.Sprintf("127.0.0.1:%d", status),
		CertDir:         filepath.Join(prefix, "certs"),
		WorkerProcesses: workers,
		ListenIP:        "127.0.0.1",
	}
	if v.log == logSyslog {
		opts.Syslog = syslog
	}
	cfg, err := render.Render([]events.RoutingState{s}, opts)
	if err != nil {
		return "", err
	}
	files := render.VersionFiles(1)
	for name, b := range cfg.Files {
		files[name] = b
	}
	edits := slices.Clone(v.edits)
	if v.log == logOff {
		edits = append(edits, accessLogOff)
	}
	for _, e := range edits {
		if files[e.file], err = replace(files[e.file], e); err != nil {
			return "", fmt.Errorf("%s: %w", e.file, err)
		}
	}
	dir := filepath.Join(prefix, "conf")
	for name, b := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return "", err
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return "", err
		}
	}
	if err := makePrefix(prefix); err != nil {
		return "", err
	}
	return filepath.Join(dir, render.MainFile), nil
}

// replace applies e to b, and fails when the matches are not as many as
// e expects.
func replace(b []byte, e edit) ([]byte, error) {
	re := regexp.MustCompile(e.pattern)
	want := max(e.n, 1)
	if n := len(re.FindAll(b, -1)); n != want {
		return nil, fmt.Errorf("%d matches of %s, want %d", n, e.pattern, want)
	}
	return re.ReplaceAll(b, []byte(e.repl)), nil
}

// handConfig fills in handwritten.conf for the variant.
func handConfig(prefix string, v *variant, backends []string, workers int, syslog string) (string, error) {
	data := map[string]any{
		"Prefix":   prefix,
		"Workers":  workers,
		"Backends": backends,
		"Listen":   fmt.Sprintf("127.0.0.1:%d", v.port),
		"Syslog":   "",
	}
	if v.log == logSyslog {
		data["Syslog"] = syslog
		data["LogLayout"] = jsonLayout()
	}
	return writeTemplate(prefix, handwrittenConf, data)
}

// jsonLayout is the rendered JSON log line's layout (render.AccessLogFields
// in order), with the app name a literal.
func jsonLayout() string {
	var b strings.Builder
	b.WriteString(`{"v":1,"node":"local"`)
	for _, f := range render.AccessLogFields {
		val := f[1]
		switch f[0] {
		case "app":
			val = appName
		case "config_version":
			val = "1" // one fixed config: no per-version map
		}
		b.WriteString(`,"` + f[0] + `":"` + val + `"`)
	}
	b.WriteString("}")
	return b.String()
}

// writeTemplate writes the config template filled with data to
// prefix/conf/nginx.conf and returns its path.
func writeTemplate(prefix, tmpl string, data any) (string, error) {
	t, err := template.New("conf").Option("missingkey=error").Parse(tmpl)
	if err != nil {
		return "", err
	}
	var b bytes.Buffer
	if err := t.Execute(&b, data); err != nil {
		return "", err
	}
	if err := makePrefix(prefix); err != nil {
		return "", err
	}
	conf := filepath.Join(prefix, "conf", "nginx.conf")
	if err := os.MkdirAll(filepath.Dir(conf), 0o755); err != nil {
		return "", err
	}
	return conf, os.WriteFile(conf, b.Bytes(), 0o644)
}

// makePrefix creates the directories NGINX does not create itself.
func makePrefix(prefix string) error {
	for _, d := range []string{"logs", "temp"} {
		if err := os.MkdirAll(filepath.Join(prefix, d), 0o755); err != nil {
			return err
		}
	}
	return nil
}

// start tests the config with `nginx -t` and starts NGINX on it.
func start(ctx context.Context, s *nginx.Supervisor, conf string) error {
	if err := s.Test(ctx, conf); err != nil {
		return err
	}
	return s.Start()
}

// workersOf waits (bounded) until the master has want workers and returns
// their pids.
func workersOf(s *nginx.Supervisor, want int) ([]int, error) {
	for range 100 {
		if ws, ok := s.AcceptingWorkers(); ok && len(ws) == want {
			return ws, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil, fmt.Errorf("NGINX did not start %d workers", want)
}

var client = &http.Client{Timeout: 2 * time.Second}

// statusClient opens one connection per request, so the backends' accepts
// counter moves by exactly one per reading.
var statusClient = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

var reAccepts = regexp.MustCompile(`server accepts handled requests\s+(\d+)`)

// accepts reads the connections the backends have accepted so far from
// their stub_status.
func accepts(ctx context.Context, url string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := statusClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("backend status: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return 0, fmt.Errorf("backend status: %w", err)
	}
	m := reAccepts.FindSubmatch(body)
	if m == nil {
		return 0, fmt.Errorf("backend status: no accepts counter in %q", body)
	}
	return strconv.ParseInt(string(m[1]), 10, 64)
}

// get fetches url and returns the status, X-Backend header and body.
func get(ctx context.Context, url string) (int, string, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1024))
	return resp.StatusCode, resp.Header.Get("X-Backend"), string(body), err
}

// waitOK waits (at most 10 s) until url answers 200 "ok\n".
func waitOK(ctx context.Context, url string) error {
	var last error
	for range 200 {
		code, _, body, err := get(ctx, url)
		switch {
		case err != nil:
			last = err
		case code == http.StatusOK && body == "ok\n":
			return nil
		default:
			last = fmt.Errorf("status %d, body %q", code, body)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s not answering 200 ok: %w", url, last)
}

// checkSpread checks that the config answers with the backends' body and
// sends requests to all of them.
func checkSpread(ctx context.Context, port int) error {
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	if err := waitOK(ctx, url); err != nil {
		return err
	}
	seen := map[string]bool{}
	for range 4 * backendCount {
		code, backend, body, err := get(ctx, url)
		if err != nil {
			return err
		}
		if code != http.StatusOK || body != "ok\n" {
			return fmt.Errorf("status %d, body %q", code, body)
		}
		seen[backend] = true
	}
	if len(seen) != backendCount {
		return fmt.Errorf("requests reached %d backends, want %d", len(seen), backendCount)
	}
	return nil
}

// freePorts returns n distinct free loopback ports.
func freePorts(n int) ([]int, error) {
	var out []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer ln.Close()
		out = append(out, ln.Addr().(*net.TCPAddr).Port)
	}
	return out, nil
}

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
	front, _ := v.sup.AcceptingWorkers()
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

func header(c config, bin, wrkBin string, n int) {
	nv, _ := exec.Command(bin, "-v").CombinedOutput()
	wv, _ := exec.Command(wrkBin, "-v").CombinedOutput()
	wl, _, _ := strings.Cut(string(wv), "\n")
	wl, _, _ = strings.Cut(wl, " Copyright")
	fmt.Printf("NGINX under test: %s, worker_processes %d; backends: 1 NGINX worker, %d ports, body \"ok\\n\"\n",
		strings.TrimSpace(strings.TrimPrefix(string(nv), "nginx version: ")), c.workers, backendCount)
	fmt.Printf("load: %s, -t%d -c%d, %d rounds x %s per config (after a %s warm-up), order rotating each round\n",
		strings.TrimSpace(wl), c.threads, c.conns, c.rounds, c.duration, c.warmup)
	if c.pin {
		fmt.Printf("CPUs: %d; NGINX under test pinned to CPU %s; backends, wrk and the log sink to CPU %s\n", runtime.NumCPU(), c.frontCPUs, c.loadCPUs)
	} else {
		fmt.Printf("CPUs: %d; nothing pinned\n", runtime.NumCPU())
	}
	total := time.Duration(n) * (c.warmup + time.Duration(c.rounds)*c.duration)
	fmt.Printf("about %s of load\n\n", total.Round(time.Second))
}

func report(vs []*variant, maxOther float64) {
	fmt.Println()
	fmt.Println("| config | req/s | p99 | CPU of the NGINX under test | its CPU per request | upstream connections per 1k requests | log lines per request | |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|---|")
	by := map[string]*variant{}
	for _, v := range vs {
		by[v.key] = v
		med := func(f func(result) float64) float64 { return median(v.results, f) }
		lines := "-"
		if v.log == logSyslog {
			lines = fmt.Sprintf("%.2f", med(func(r result) float64 { return float64(r.logLines) / float64(max(r.requests, 1)) }))
		}
		fmt.Printf("| %s | %.0f | %s | %.0f%% | %.1fµs | %.1f | %s | %s |\n", v.key,
			med(func(r result) float64 { return r.rps }),
			fmtDur(time.Duration(med(func(r result) float64 { return float64(r.p99) }))),
			100*med(func(r result) float64 { return r.frontCPU }),
			1e6*med(func(r result) float64 { return r.cpuPerReq }),
			med(perK), lines, v.title)
	}
	fmt.Println()
	fmt.Println("Medians over the rounds. CPU: worker time of the NGINX under test over the run, in % of one core.")
	fmt.Println()
	fmt.Println("| ratio | req/s | range | req/s, quiet rounds only | CPU per request | |")
	fmt.Println("|---|---:|---|---:|---:|---|")
	for _, q := range ratios {
		a, b := by[q[0]], by[q[1]]
		if a == nil || b == nil {
			continue
		}
		rps := make([]float64, len(a.results))
		cpu := make([]float64, len(a.results))
		var quiet []float64
		for i := range rps {
			rps[i] = a.results[i].rps / b.results[i].rps
			cpu[i] = a.results[i].cpuPerReq / b.results[i].cpuPerReq
			if max(a.results[i].otherCPU+a.results[i].steal, b.results[i].otherCPU+b.results[i].steal) <= maxOther {
				quiet = append(quiet, rps[i])
			}
		}
		q4 := "none"
		if len(quiet) > 0 {
			q4 = fmt.Sprintf("%.3f (%d of %d)", medianOf(quiet), len(quiet), len(rps))
		}
		fmt.Printf("| %s / %s | %.3f | %.3f–%.3f | %s | %.3f | %s |\n", q[0], q[1], medianOf(rps), slices.Min(rps), slices.Max(rps), q4, medianOf(cpu), q[2])
	}
	fmt.Println()
	fmt.Println("Ratios: median of the per-round ratios (both sides measured in the same round); quiet rounds: both")
	fmt.Println("runs had other processes below -max-other. CPU per request: of the NGINX under test, median ratio.")
	var other []float64
	for _, v := range vs {
		for _, r := range v.results {
			other = append(other, r.otherCPU+r.steal)
		}
	}
	fmt.Printf("CPU taken by processes outside the benchmark (and the hypervisor) during the runs: median %.0f%%, max %.0f%% of one core.\n",
		100*medianOf(other), 100*slices.Max(other))
	if slices.Max(other) > maxOther {
		fmt.Println("WARNING: the machine was not quiet; the figures are noisier than they should be. Run again on an idle machine.")
	}
}

// perK is the upstream connections opened per 1,000 requests.
func perK(r result) float64 { return 1000 * float64(r.upConns) / float64(max(r.requests, 1)) }

func median(rs []result, f func(result) float64) float64 {
	xs := make([]float64, len(rs))
	for i, r := range rs {
		xs[i] = f(r)
	}
	return medianOf(xs)
}

func medianOf(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func fmtDur(d time.Duration) string {
	if d < time.Millisecond {
		return fmt.Sprintf("%dµs", d.Microseconds())
	}
	return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
}
