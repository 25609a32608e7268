package e2e

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/orchestry/orchestry/pkg/events"
)

// scrapeMetrics GETs the metrics service's /metrics and returns the value
// of each series by its name and labels as written.
func (s *stack) scrapeMetrics() map[string]float64 {
	s.t.Helper()
	addr := s.metrics.HTTPAddr()
	if addr == nil {
		return nil
	}
	resp, err := http.Get("http://" + addr.String() + "/metrics")
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	out := map[string]float64{}
	for _, l := range strings.Split(string(b), "\n") {
		i := strings.LastIndexByte(l, ' ')
		if l == "" || l[0] == '#' || i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(l[i+1:], 64); err == nil {
			out[l[:i]] = v
		}
	}
	return out
}

// TestConvergenceAndNodeMetrics follows real changes end to end: each
// routing.changed the renderer makes live is reported served with its
// publish time, and the metrics service observes its convergence, counts
// the reload, scrapes the node's stub_status and sees the served config
// version in NGINX's access log lines.
func TestConvergenceAndNodeMetrics(t *testing.T) {
	s := newStack(t, withMetricsService)
	start := time.Now()
	port := s.serveWeb(2)
	// Adding the second instance is one more change, served by its own
	// reload (or coalesced with the first).
	r := s.waitReport(func(r events.RenderReport) bool {
		return r.Outcome == events.OutcomeApplied && len(r.Served) > 0
	}, "a config serving web's changes")
	// serveWeb waited for NGINX to serve both instances, so some report
	// shows the last revision served; collect until then.
	served := r.Served
	for served[len(served)-1].App != "web" {
		r = s.waitReport(func(r events.RenderReport) bool { return len(r.Served) > 0 }, "web served")
		served = r.Served
	}
	c := served[len(served)-1]
	conv := r.LiveAt.Sub(c.ChangedAt)
	t.Logf("report v%d serves web revision %d: changed %s, live %s, convergence %v (test started %v before)",
		r.Version, c.Revision, c.ChangedAt.Format(time.RFC3339Nano), r.LiveAt.Format(time.RFC3339Nano), conv, c.ChangedAt.Sub(start).Round(time.Millisecond))
	if r.StatusAddr != s.status {
		t.Errorf("report status_addr %q, want %q", r.StatusAddr, s.status)
	}
	if conv <= 0 || conv > 10*time.Second || c.ChangedAt.Before(start) {
		t.Errorf("convergence %v (changed at %v, test started %v): want a positive time under 10s", conv, c.ChangedAt, start)
	}
	hits(t, port, 20)

	const node = `{node="e2e"}`
	var m map[string]float64
	deadline := time.Now().Add(15 * time.Second)
	for {
		m = s.scrapeMetrics()
		if m["orchestry_config_convergence_seconds_count"+node] >= 1 && m["orchestry_nginx_serving_config_version"+node] >= float64(r.Version) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics did not show the convergence and the served version within 15s: %v", pick(m, "orchestry_config_", "orchestry_nginx_"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("node metrics: %v", pick(m, "orchestry_config_", "orchestry_nginx_"))
	for name, want := range map[string]float64{
		"orchestry_nginx_up" + node:                                    1,
		"orchestry_config_last_reload_success" + node:                  1,
		`orchestry_config_reloads_total{node="e2e",outcome="applied"}`: 1,
	} {
		if m[name] < want {
			t.Errorf("%s = %v, want at least %v", name, m[name], want)
		}
	}
	if m["orchestry_nginx_http_requests_total"+node] < 20 {
		t.Errorf("stub_status requests %v, want at least the 20 sent", m["orchestry_nginx_http_requests_total"+node])
	}
	if sum := m["orchestry_config_convergence_seconds_sum"+node]; sum <= 0 || sum > 10*m["orchestry_config_convergence_seconds_count"+node] {
		t.Errorf("convergence sum %v s over %v changes", sum, m["orchestry_config_convergence_seconds_count"+node])
	}
}

// pick are the series of m whose names start with one of prefixes.
func pick(m map[string]float64, prefixes ...string) map[string]float64 {
	out := map[string]float64{}
	for k, v := range m {
		for _, p := range prefixes {
			if strings.HasPrefix(k, p) && !strings.Contains(k, "_bucket") {
				out[k] = v
			}
		}
	}
	return out
}
