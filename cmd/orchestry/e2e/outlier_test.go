package e2e

import (
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/orchestry/orchestry/pkg/events"
)

// outlierBaseEjection is the first ejection's time in these stacks.
const outlierBaseEjection = 3 * time.Second

// metricsLog records the metrics.upstream events of one app.
type metricsLog struct {
	mu  sync.Mutex
	all []events.UpstreamMetrics
}

func (s *stack) watchMetrics(app string) *metricsLog {
	s.t.Helper()
	l := &metricsLog{}
	sub, err := s.nc.Subscribe(events.MetricsUpstream(app), func(m *nats.Msg) {
		ev, err := events.Decode(m.Subject, m.Data)
		if err != nil {
			s.t.Errorf("metrics.upstream undecodable: %v", err)
			return
		}
		l.mu.Lock()
		l.all = append(l.all, ev.Payload.(events.UpstreamMetrics))
		l.mu.Unlock()
	})
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { _ = sub.Unsubscribe() })
	return l
}

// totals sums the figures published for the address 127.0.0.1:port.
func (l *metricsLog) totals(port int) (requests, status5xx int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	for _, m := range l.all {
		for _, in := range m.Instances {
			if in.Address == addr {
				requests += in.Requests
				status5xx += in.Status5xx
			}
		}
	}
	return requests, status5xx
}

func TestAnInstanceAnswering500WhileItsHealthCheckPassesIsEjectedAndReturns(t *testing.T) {
	s := newStack(t, withHealthService, withMetricsService)
	bs := []*backend{startBackend(t, "b1"), startBackend(t, "b2"), startBackend(t, "b3"), startBackend(t, "b4")}
	port := freePort(t)
	hl := s.watchHealth("web")
	ml := s.watchMetrics("web")
	s.putApp("web", port, healthCheckYAML)
	for _, b := range bs {
		s.addBackend("web", b)
	}
	waitServes(t, port, "b1", "b2", "b3", "b4")

	bad := bs[1]
	before := len(hl.of(bad.ID))
	bad.fail500.Store(true)
	broke := time.Now()
	l := startLoad(t, port, 2, 100_000)
	ejected := hl.wait(t, bad.ID, events.HealthEjected, before, 20*time.Second)
	out := s.waitLive("web", bad.Port, false, 20*time.Second)
	if !strings.Contains(ejected.LastError, "outlier") {
		t.Errorf("ejected state gives no outlier reason: %+v", ejected)
	}
	if probes := bad.probes.Load(); probes == 0 {
		t.Fatal("the bad instance was never probed")
	}
	t.Logf("500s began; ejected after %s (%q), out of the live config after %s",
		ejected.Since.Sub(broke).Round(time.Millisecond), ejected.LastError, out.Sub(broke).Round(time.Millisecond))

	// Once NGINX serves the config without it, no client sees a 500.
	l.halt()
	if l.failed.Load() == 0 {
		t.Error("no client saw a 500 before the ejection: the test did not exercise anything")
	}
	waitServes(t, port, "b1", "b3", "b4")
	s.settle()
	if after := hits(t, port, 60); after["status:500"] != 0 || after[bad.ID] != 0 {
		t.Errorf("after the ejection: %v", after)
	}
	// Every 500 the backend sent was counted by the metrics service (the
	// last window is published within one more window).
	var reqs, fives int64
	for end := time.Now().Add(5 * metricsWindow); time.Now().Before(end); time.Sleep(metricsWindow / 5) {
		if reqs, fives = ml.totals(bad.Port); fives == bad.sent500.Load() {
			break
		}
	}
	if fives == 0 || fives != bad.sent500.Load() {
		t.Errorf("metrics.upstream for %s: %d requests, %d 5xx; the backend answered %d 500s", bad.ID, reqs, fives, bad.sent500.Load())
	}

	// The API shows the app's latest window.
	var view struct {
		App    string                  `json:"app"`
		Window *events.UpstreamMetrics `json:"window"`
	}
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if err := json.Unmarshal([]byte(s.mustDo(http.StatusOK, http.MethodGet, "/v1/apps/web/metrics", "", "")), &view); err != nil {
			t.Fatal(err)
		}
		if view.Window != nil {
			break
		}
	}
	if view.App != "web" || view.Window == nil || len(view.Window.Instances) == 0 {
		t.Errorf("GET /v1/apps/web/metrics: %+v, want the latest window", view)
	}

	// Healthy again: it returns through a passing probe once the ejection
	// time is over, not before.
	bad.fail500.Store(false)
	back := hl.wait(t, bad.ID, events.HealthHealthy, before, 20*time.Second)
	if d := back.Since.Sub(ejected.Since); d < outlierBaseEjection {
		t.Errorf("returned %s after the ejection, before the ejection time %s", d, outlierBaseEjection)
	}
	s.waitLive("web", bad.Port, true, 10*time.Second)
	waitServes(t, port, "b1", "b2", "b3", "b4")
	for _, b := range []*backend{bs[0], bs[2], bs[3]} {
		for _, h := range hl.of(b.ID) {
			if h.State == events.HealthEjected {
				t.Errorf("%s, answering 200, was ejected: %+v", b.ID, h)
			}
		}
	}
}

func TestEjectionNeverTakesMoreThanHalfOfAnApp(t *testing.T) {
	s := newStack(t, withHealthService, withMetricsService)
	bs := []*backend{startBackend(t, "b1"), startBackend(t, "b2"), startBackend(t, "b3"), startBackend(t, "b4")}
	port := freePort(t)
	hl := s.watchHealth("web")
	s.putApp("web", port, healthCheckYAML)
	for _, b := range bs {
		s.addBackend("web", b)
	}
	waitServes(t, port, "b1", "b2", "b3", "b4")
	for _, b := range bs[1:] {
		b.fail500.Store(true)
	}
	l := startLoad(t, port, 2, 100_000)
	// Wait until two are ejected, then give the third several windows.
	deadline := time.Now().Add(20 * time.Second)
	count := func() (n int) {
		for _, b := range bs {
			if hs := hl.of(b.ID); len(hs) > 0 && hs[len(hs)-1].State == events.HealthEjected {
				n++
			}
		}
		return n
	}
	for count() < 2 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(6 * metricsWindow)
	l.halt()
	if n := count(); n != 2 {
		t.Fatalf("%d of 4 instances ejected, want exactly 2 (max 50%%)", n)
	}
	if hs := hl.of("b1"); len(hs) > 0 && hs[len(hs)-1].State != events.HealthHealthy {
		t.Errorf("b1, answering 200, is %s", hs[len(hs)-1].State)
	}
}
