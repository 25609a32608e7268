// Package e2e holds the integration tests of the traffic path: real NGINX,
// real embedded JetStream, the routing and renderer services wired as the
// all-in-one wires them, and real HTTP backends.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/orchestry/orchestry/cmd/orchestry/demo"
	"github.com/orchestry/orchestry/pkg/events"
	"github.com/orchestry/orchestry/pkg/events/eventstest"
	"github.com/orchestry/orchestry/services/health"
	"github.com/orchestry/orchestry/services/metrics"
	"github.com/orchestry/orchestry/services/renderer"
	"github.com/orchestry/orchestry/services/routing"
)

const testToken = "e2e-token-0123456789"

// requireNginx skips without nginx, unless ORCHESTRY_REQUIRE_INTEGRATION=1
// makes that a failure.
func requireNginx(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("nginx"); err == nil {
		return
	}
	if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
		return
	}
	if os.Getenv("ORCHESTRY_REQUIRE_INTEGRATION") == "1" {
		t.Fatal("nginx is required (ORCHESTRY_REQUIRE_INTEGRATION=1) but not installed: apt-get install -y nginx-light")
	}
	t.Skip("nginx not installed (apt-get install -y nginx-light); skipping integration test")
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// stack is one all-in-one: NATS, routing, a renderer with its NGINX, and
// demo backends.
type stack struct {
	t        testing.TB
	srv      *eventstest.Server
	nc       *nats.Conn
	js       jetstream.JetStream
	api      string
	dataDir  string
	status   string
	backends []*demo.Backend
	reports  chan events.RenderReport
	log      zerolog.Logger

	// withHealth runs a health service, and the renderer holds instances
	// until health reports them healthy.
	withHealth bool
	// syslog is the metrics service's UDP address when one runs.
	syslog string
	// selfSigned lets the renderer create development certificates.
	selfSigned bool
	// routing is the routing service's configuration.
	routing routing.Config
	// httpPort and acmeChallenge are the renderer's HTTP port and HTTP-01
	// responder (0 and empty: none).
	httpPort      int
	acmeChallenge string

	mu         sync.Mutex
	stopRender func()
	// metrics is the metrics service (withMetricsService), its /metrics on
	// a free loopback port.
	metrics *metrics.Service
}

// conn is a new NATS connection as the service's own user.
func (s *stack) conn(service string) *nats.Conn {
	s.t.Helper()
	return s.srv.ConnectAs(s.t, service, nats.Name(service))
}

// stackOption changes how newStack wires the stack.
type stackOption func(*stack)

// withHealthService runs the health service in the stack, as the
// all-in-one does, with the renderer's defaults (unprobed instances held).
func withHealthService(s *stack) { s.withHealth = true }

// withSelfSignedCertificates lets the renderer create a development
// certificate for a TLS app without one.
func withSelfSignedCertificates(s *stack) { s.selfSigned = true }

// metricsWindow is the metrics service's window in stacks that run it.
const metricsWindow = 500 * time.Millisecond

// withMetricsService runs the metrics service, and NGINX sends it its
// access log.
func withMetricsService(s *stack) {
	s.t.Helper()
	s.syslog = fmt.Sprintf("127.0.0.1:%d", freeUDPPort(s.t))
}

// freeUDPPort returns a loopback UDP port that was free a moment ago.
func freeUDPPort(t testing.TB) int {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

func newStack(t testing.TB, opts ...stackOption) *stack {
	t.Helper()
	requireNginx(t)
	// Each service connects as its own NATS user, with the permissions it
	// has in production; the test itself is the admin.
	srv := eventstest.StartSecured(t, "")
	nc, js := srv.Connect(t)
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	s := &stack{t: t, srv: srv, nc: nc, js: js, dataDir: t.TempDir(), log: log,
		status: fmt.Sprintf("127.0.0.1:%d", freePort(t)), reports: make(chan events.RenderReport, 256)}
	for _, o := range opts {
		o(s)
	}

	sub, err := nc.Subscribe(events.ConfigRenderedWildcard, func(m *nats.Msg) {
		ev, err := events.Decode(m.Subject, m.Data)
		if err != nil {
			t.Errorf("config.rendered undecodable: %v", err)
			return
		}
		select {
		case s.reports <- ev.Payload.(events.RenderReport):
		default:
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })

	s.routing.APIAddr, s.routing.APIToken = "127.0.0.1:0", testToken
	rt, err := routing.New(s.conn(events.ServiceRouting), s.routing, log)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.api = "http://" + ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := rt.Run(ctx, ln); err != nil {
			t.Errorf("routing: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })

	if s.withHealth {
		s.startHealth()
	}
	if s.syslog != "" {
		ms, err := metrics.New(s.conn(events.ServiceMetrics), metrics.Config{SyslogAddr: s.syslog, Window: metricsWindow, MaxInstances: 100, HTTPAddr: "127.0.0.1:0"}, log)
		if err != nil {
			t.Fatal(err)
		}
		s.metrics = ms
		t.Cleanup(s.run("metrics", ms.Run))
	}

	bs, err := demo.StartBackends(4)
	if err != nil {
		t.Fatal(err)
	}
	s.backends = bs
	t.Cleanup(func() { demo.StopBackends(bs) })

	s.startRenderer()
	t.Cleanup(s.stopRenderer)
	s.waitReport(func(r events.RenderReport) bool { return r.Outcome == events.OutcomeApplied }, "first config live")
	return s
}

// startRenderer runs a renderer on the stack's data dir (again, after
// stopRenderer, to test restarts).
func (s *stack) startRenderer() {
	s.t.Helper()
	unprobed := "serve"
	if s.withHealth {
		unprobed = "hold"
	}
	rd, err := renderer.New(s.conn(events.ServiceRenderer), renderer.Config{
		DataDir: s.dataDir, Node: "e2e", NginxBin: "nginx", StatusAddr: s.status, Workers: 1,
		Unprobed: unprobed, Coalesce: 50 * time.Millisecond, ConfirmTimeout: 10 * time.Second, StopGrace: 5 * time.Second,
		SlowStart: 2 * time.Second, PanicPercent: 50, Syslog: s.syslog, SelfSigned: s.selfSigned, ListenIP: "127.0.0.1",
		HTTPPort: s.httpPort, ACMEChallenge: s.acmeChallenge,
	}, s.log)
	if err != nil {
		s.t.Fatal(err)
	}
	stop := s.run("renderer", rd.Run)
	s.mu.Lock()
	s.stopRender = stop
	s.mu.Unlock()
}

// run runs a service until the returned stop is called; stop waits for it.
func (s *stack) run(name string, run func(context.Context) error) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := run(ctx); err != nil {
			s.t.Errorf("%s: %v", name, err)
		}
	}()
	return func() { cancel(); <-done }
}

// startHealth runs one health replica until the test ends.
func (s *stack) startHealth() {
	s.t.Helper()
	hs, err := health.New(s.conn(events.ServiceHealth), health.Config{
		Workers: 16, InitialState: events.HealthUnhealthy, Replica: "e2e",
		Heartbeat: 200 * time.Millisecond, Lease: time.Second,
		OutlierConsecutiveGateway: 5, OutlierConsecutive5xx: 5, OutlierFailurePercent: 50, OutlierMinRequests: 10,
		OutlierBaseEjection: outlierBaseEjection, OutlierMaxEjection: 8 * outlierBaseEjection, OutlierMaxPercent: 50,
	}, s.log)
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(s.run("health", hs.Run))
}

func (s *stack) stopRenderer() {
	s.mu.Lock()
	stop := s.stopRender
	s.stopRender = nil
	s.mu.Unlock()
	if stop != nil {
		stop()
	}
}

// waitReport waits (at most 30s) for a config.rendered report that
// satisfies ok, and returns it.
func (s *stack) waitReport(ok func(events.RenderReport) bool, what string) events.RenderReport {
	s.t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case r := <-s.reports:
			if ok(r) {
				return r
			}
		case <-deadline:
			s.t.Fatalf("no config.rendered report for %q within 30s", what)
		}
	}
}

// settle waits until no config.rendered report has come for half a second
// (at most 10s), forgetting the reports: a render NGINX already serves is
// reported only after its version check.
func (s *stack) settle() {
	deadline := time.After(10 * time.Second)
	for {
		select {
		case <-s.reports:
		case <-time.After(500 * time.Millisecond):
			return
		case <-deadline:
			s.t.Fatal("config.rendered reports did not settle within 10s")
		}
	}
}

// drainReports forgets reports received so far.
func (s *stack) drainReports() {
	for {
		select {
		case <-s.reports:
		default:
			return
		}
	}
}

// do calls the API and returns status and body.
func (s *stack) do(method, path, ctype, body string) (int, string) {
	s.t.Helper()
	req, err := http.NewRequest(method, s.api+path, strings.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// mustDo calls the API and fails the test unless the status is want.
func (s *stack) mustDo(want int, method, path, ctype, body string) string {
	s.t.Helper()
	code, b := s.do(method, path, ctype, body)
	if code != want {
		s.t.Fatalf("%s %s: %d %s (want %d)", method, path, code, b, want)
	}
	return b
}

// putApp declares an app listening on port.
func (s *stack) putApp(name string, port int, extra string) {
	s.t.Helper()
	body := fmt.Sprintf("apiVersion: v1\nkind: App\nmetadata:\n  name: %s\nspec:\n  networking:\n    external_port: %d\n%s", name, port, extra)
	code, b := s.do(http.MethodPut, "/v1/apps/"+name, "application/yaml", body)
	if code != http.StatusCreated && code != http.StatusOK {
		s.t.Fatalf("PUT app %s: %d %s", name, code, b)
	}
}

// addInstance registers backend i of the stack through the REST API.
func (s *stack) addInstance(app string, i int) {
	s.t.Helper()
	b := s.backends[i]
	body, _ := json.Marshal(map[string]any{"id": b.ID, "ip": "127.0.0.1", "port": b.Addr.Port})
	code, out := s.do(http.MethodPost, "/v1/apps/"+app+"/instances", "application/json", string(body))
	if code != http.StatusCreated && code != http.StatusOK {
		s.t.Fatalf("POST instance %s: %d %s", b.ID, code, out)
	}
}

// publishRaw publishes hand-written JSON on subject, as another system with
// nothing but a NATS client would.
func (s *stack) publishRaw(subject, typ, data string) {
	s.t.Helper()
	raw := fmt.Sprintf(`{"specversion":"1.0","id":"ext-%d","source":"orchestrator/test","type":%q,"time":%q,"datacontenttype":"application/json","data":%s}`,
		time.Now().UnixNano(), typ, time.Now().UTC().Format(time.RFC3339Nano), data)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := s.js.Publish(ctx, subject, []byte(raw)); err != nil {
		s.t.Fatal(err)
	}
}

// hits sends n requests to port (a fresh connection each) and counts the
// answering instance per X-Instance, a non-200 answer as "status:N" and a
// failure as "error:...", as route does.
func hits(t testing.TB, port, n int) map[string]int {
	t.Helper()
	out := map[string]int{}
	for range n {
		out[route(t, port, "/", nil)]++
	}
	return out
}

// waitServes polls port until a round of requests is answered by exactly the
// instances in want (at most 30s).
func waitServes(t testing.TB, port int, want ...string) map[string]int {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var got map[string]int
	for time.Now().Before(deadline) {
		got = hits(t, port, 8*len(want))
		if sameKeys(got, want) {
			return got
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("port %d: served by %v, want exactly %v", port, got, want)
	return nil
}

func sameKeys(got map[string]int, want []string) bool {
	if len(got) != len(want) {
		return false
	}
	for _, w := range want {
		if got[w] == 0 {
			return false
		}
	}
	return true
}

// readFile reads a file of the renderer's NGINX prefix.
func (s *stack) readFile(rel string) string {
	b, _ := os.ReadFile(filepath.Join(s.dataDir, "nginx", rel))
	return string(bytes.TrimSpace(b))
}

// serveWeb declares the app "web" on a free port with the first n backends
// as instances, waits until NGINX serves all of them and returns the port.
func (s *stack) serveWeb(n int) int {
	s.t.Helper()
	port := freePort(s.t)
	s.putApp("web", port, "")
	var ids []string
	for i := range n {
		s.addInstance("web", i)
		ids = append(ids, s.backends[i].ID)
	}
	waitServes(s.t, port, ids...)
	return port
}
