package metrics

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/orchestry/orchestry/pkg/events"
	"github.com/orchestry/orchestry/pkg/events/eventstest"
)

// The access log lines exactly as the renderer writes them (the contract
// this service parses); NODE and the syslog address are filled in.
const (
	logFormatLine = `log_format orchestry_json escape=json '{"v":1,"node":"NODE","app":"$orchestry_app","ts":"$msec","status":"$status","request_time":"$request_time","upstream_addr":"$upstream_addr","upstream_status":"$upstream_status","upstream_connect_time":"$upstream_connect_time","upstream_header_time":"$upstream_header_time","upstream_response_time":"$upstream_response_time","bytes_sent":"$bytes_sent","config_version":"$orchestry_config_version"}';`
	// versionMapLine is what the renderer's config-version.conf holds.
	versionMapLine = `map "" $orchestry_config_version { default 7; }`
	setAppLine     = `set $orchestry_app APPNAME;`
	accessLogLine  = `access_log syslog:server=SYSLOG,tag=orchestry,nohostname orchestry_json;`
)

// nginxBin finds NGINX, or skips the test (fails it when
// ORCHESTRY_REQUIRE_INTEGRATION=1).
func nginxBin(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("nginx"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
		return "/usr/sbin/nginx"
	}
	msg := "nginx not found in PATH or at /usr/sbin/nginx (install it: apt-get install -y nginx-light, or run make test)"
	if os.Getenv("ORCHESTRY_REQUIRE_INTEGRATION") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// startNginx writes nginx.conf into a fresh prefix and runs NGINX in the
// foreground until the test ends (SIGQUIT, then SIGKILL after 10s).
func startNginx(t *testing.T, bin, conf string, port int) {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{"logs", "temp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd := exec.Command(bin, "-p", dir, "-c", "nginx.conf", "-g", "daemon off;")
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start nginx: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
			t.Error("nginx did not stop within 10s of SIGQUIT")
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		select {
		case err := <-exited:
			errLog, _ := os.ReadFile(filepath.Join(dir, "logs", "error.log"))
			t.Fatalf("nginx exited: %v\n%s\n%s", err, out.String(), errLog)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx not listening on %d within 10s: %s", port, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// get sends n GET / to 127.0.0.1:port, parallel at a time, and returns
// how many answers each status class (2 for 2xx...) had.
func get(t *testing.T, port, n, parallel int) map[int]int64 {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second}
	var wg sync.WaitGroup
	var mu sync.Mutex
	classes := map[int]int64{}
	sem := make(chan struct{}, parallel)
	for range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			resp, err := client.Get("http://127.0.0.1:" + strconv.Itoa(port) + "/")
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			mu.Lock()
			classes[resp.StatusCode/100]++
			mu.Unlock()
		})
	}
	wg.Wait()
	return classes
}

// webConf is an nginx.conf serving the app "web" on port from the upstream
// servers (each the arguments of a server directive), logging each request
// as the renderer does to the syslog address (node "test-node", config
// version 7), with a status server answering stub_status at /_status on
// statusPort unless it is 0.
func webConf(syslog string, port, statusPort int, servers ...string) string {
	var ups, status strings.Builder
	for _, s := range servers {
		ups.WriteString("        server " + s + ";\n")
	}
	if statusPort != 0 {
		status.WriteString("    server {\n        listen 127.0.0.1:" + strconv.Itoa(statusPort) + ";\n        access_log off;\n" +
			"        location = /_status { stub_status; }\n    }\n")
	}
	return strings.NewReplacer("NODE", "test-node", "APPNAME", "web", "SYSLOG", syslog).Replace(`
worker_processes 1;
pid nginx.pid;
error_log logs/error.log warn;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path temp/client_body;
    proxy_temp_path temp/proxy;
    fastcgi_temp_path temp/fastcgi;
    uwsgi_temp_path temp/uwsgi;
    scgi_temp_path temp/scgi;
    ` + versionMapLine + `
    ` + logFormatLine + `
    upstream app_web {
` + ups.String() + `    }
    server {
        listen 127.0.0.1:` + strconv.Itoa(port) + `;
        ` + setAppLine + `
        ` + accessLogLine + `
        location / {
            proxy_pass http://app_web;
            proxy_next_upstream error timeout;
        }
    }
` + status.String() + `}
`)
}

// countingBackend is an HTTP instance answering status after delay.
func countingBackend(t *testing.T, status int, delay time.Duration) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		time.Sleep(delay)
		w.WriteHeader(status)
		fmt.Fprintln(w, "hello")
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

func hostPort(t *testing.T, srv *httptest.Server) (string, int) {
	t.Helper()
	a := srv.Listener.Addr().(*net.TCPAddr)
	return a.String(), a.Port
}

// TestWithNginx runs real NGINX with the renderer's access log lines in
// front of a 200 backend (20 ms), a 500 backend and a dead address, sends
// real requests, and checks the metrics.upstream events on JetStream.
func TestWithNginx(t *testing.T) {
	bin := nginxBin(t)
	srv := eventstest.Start(t, "")
	nc, js := srv.Connect(t)
	got := collect(t, js, "web")
	svc := startService(t, nc, 400*time.Millisecond)

	const delay = 20 * time.Millisecond
	okSrv, okHits := countingBackend(t, http.StatusOK, delay)
	failSrv, failHits := countingBackend(t, http.StatusInternalServerError, 0)
	okAddr, okPort := hostPort(t, okSrv)
	failAddr, failPort := hostPort(t, failSrv)
	deadPort := freePort(t) // closed: connections are refused
	deadAddr := "127.0.0.1:" + strconv.Itoa(deadPort)

	publishRouting(t, js, events.RoutingState{
		App: events.App{Metadata: events.Metadata{Name: "web"}},
		Instances: []events.Instance{
			{ID: "ok", IP: "127.0.0.1", Port: okPort},
			{ID: "fail", IP: "127.0.0.1", Port: failPort},
			{ID: "dead", IP: "127.0.0.1", Port: deadPort},
		},
		Revision: 1,
	})
	waitFor(t, 10*time.Second, "app web known", func() bool { return svc.agg.Known("web") })

	// Hostile datagrams first: each counted by reason, none crashes it.
	sendHostile(t, svc, "web")

	port := freePort(t)
	// The dead address is never marked down, so it is tried in every round.
	conf := webConf(svc.Addr().String(), port, 0, okAddr, failAddr, deadAddr+" max_fails=0")
	startNginx(t, bin, conf, port)

	// Real requests, a few at a time.
	const n = 90
	classes := get(t, port, n, 3)
	status2xx, status5xx := classes[2], classes[5]
	if okHits.Load()+failHits.Load() != n || status2xx != okHits.Load() || status5xx != failHits.Load() {
		t.Fatalf("backends saw %d + %d requests, clients got %d 2xx and %d 5xx; want %d in all",
			okHits.Load(), failHits.Load(), status2xx, status5xx, n)
	}

	waitFor(t, 15*time.Second, "every attempt published", func() bool {
		ok, _ := got.totals(okAddr)
		fail, _ := got.totals(failAddr)
		return ok.Requests+fail.Requests >= n
	})
	ok, okWindows := got.totals(okAddr)
	fail, _ := got.totals(failAddr)
	dead, deadWindows := got.totals(deadAddr)
	t.Logf("ok %+v", ok)
	t.Logf("fail %+v", fail)
	t.Logf("dead %+v", dead)
	for _, w := range okWindows {
		t.Logf("200 backend window: %d attempts, p50 %.3f ms, p95 %.3f ms, p99 %.3f ms", w.Requests, w.P50MS, w.P95MS, w.P99MS)
	}

	if ok.Requests != okHits.Load() || ok.Status2xx != ok.Requests {
		t.Errorf("200 backend: %d attempts (%d 2xx) published, it answered %d", ok.Requests, ok.Status2xx, okHits.Load())
	}
	if fail.Requests != failHits.Load() || fail.Status5xx != fail.Requests || fail.GatewayErrors != 0 {
		t.Errorf("500 backend: %+v, it answered %d", fail, failHits.Load())
	}
	if fail.Consecutive5xx != fail.Requests {
		t.Errorf("500 backend: trailing 5xx run %d, want all %d attempts (carried across windows)", fail.Consecutive5xx, fail.Requests)
	}
	if dead.Requests < 1 || dead.GatewayErrors != dead.Requests || dead.Status5xx != dead.Requests || dead.Retries != 0 {
		t.Errorf("dead address: %+v; want every attempt a gateway error, none a retry", dead)
	}
	if dead.ConsecutiveGatewayErrors != dead.Requests {
		t.Errorf("dead address: trailing gateway run %d, want all %d attempts", dead.ConsecutiveGatewayErrors, dead.Requests)
	}
	// Every refused attempt was retried on a live backend.
	if ok.Retries+fail.Retries != dead.Requests || ok.Retries+fail.Retries == 0 {
		t.Errorf("retries on live backends %d + %d, want the %d refused attempts", ok.Retries, fail.Retries, dead.Requests)
	}
	if ok.Bytes == 0 || dead.Bytes != 0 {
		t.Errorf("bytes: ok %d, dead %d; want them on the attempt that answered", ok.Bytes, dead.Bytes)
	}
	if want := ok.Requests + fail.Requests; svc.Counters().Lines.Load() != want {
		t.Errorf("lines = %d, want %d", svc.Counters().Lines.Load(), want)
	}
	if d := svc.Counters().Dropped(); d != int64(len(hostile("web"))) {
		t.Errorf("dropped %d lines, want only the %d hostile ones: %v", d, len(hostile("web")), svc.Counters().Snapshot())
	}
	// The delayed backend's median is its delay: NGINX logs milliseconds,
	// the histogram is within 2%; allow the scheduler 10 ms on top.
	for _, w := range okWindows {
		p50 := time.Duration(w.P50MS * float64(time.Millisecond))
		if p50 < delay*98/100 || p50 > delay+10*time.Millisecond {
			t.Errorf("200 backend p50 = %v in a window, want %v (-2%%, +10ms)", p50, delay)
		}
		if w.P95MS < w.P50MS || w.P99MS < w.P95MS {
			t.Errorf("percentiles out of order: %+v", w)
		}
	}
	for _, w := range deadWindows {
		if math.Abs(w.P50MS) > 5 {
			t.Errorf("dead address p50 = %v ms, want about 0 (refused at once)", w.P50MS)
		}
	}
	for _, m := range got.events() {
		if m.WindowSeconds <= 0 || m.WindowSeconds > 0.6 {
			t.Errorf("window of %v s, want at most the 400ms window", m.WindowSeconds)
		}
	}

	// Prometheus holds the same figures, cumulated.
	body := scrape(t, svc)
	for _, want := range []string{
		fmt.Sprintf(`orchestry_upstream_requests_total{app="web",code_class="5xx",instance=%q} %d`, failAddr, fail.Requests),
		fmt.Sprintf(`orchestry_upstream_gateway_errors_total{app="web",instance=%q} %d`, deadAddr, dead.GatewayErrors),
		fmt.Sprintf(`orchestry_metrics_log_lines_total{result="counted"} %d`, ok.Requests+fail.Requests),
		`orchestry_metrics_log_lines_total{result="bad_json"}`,
		`orchestry_upstream_response_seconds{app="web",instance=`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// scrape GETs the service's /metrics.
func scrape(t *testing.T, svc *Service) string {
	t.Helper()
	resp, err := http.Get("http://" + svc.HTTPAddr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %v %s", err, resp.Status)
	}
	return string(b)
}
