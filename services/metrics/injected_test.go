package metrics

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orchestry/orchestry/pkg/events"
	"github.com/orchestry/orchestry/pkg/events/eventstest"
)

// shapedBackend answers with a known latency distribution and error rate:
// of every 100 requests it receives, 90 take base, 8 take 2×base and 2
// take 5×base, and every errEvery-th answers 500 (none when 0). Over a
// multiple of 100 requests its exact p50 is base, p95 2×base, p99 5×base
// (ranks floor(q·(n-1)) of the sorted latencies).
func shapedBackend(t *testing.T, base time.Duration, errEvery int64) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k := n.Add(1) - 1
		d := base
		switch j := k % 100; {
		case j >= 98:
			d = 5 * base
		case j >= 90:
			d = 2 * base
		}
		time.Sleep(d)
		if errEvery > 0 && k%errEvery == 0 {
			w.WriteHeader(http.StatusInternalServerError)
		}
		fmt.Fprintln(w, "hello")
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

// TestInjectedLatencyAndErrors puts real NGINX in front of two backends
// with known latencies (A: 20/40/100 ms at p50/p95/p99; B: 80/160/400 ms,
// and 10% of its answers 500) and checks that what the service publishes
// matches what was injected: the percentiles of metrics.upstream within
// -2% (the histogram's error) and +10% +10 ms (NGINX's millisecond times
// and the scheduler of a loaded machine: a sleep is never shorter, only
// longer), the 5xx counts exactly, the Prometheus histogram's
// buckets, the per-node stub_status scrape, the serving config version,
// and the reload and convergence series fed by config.rendered.
func TestInjectedLatencyAndErrors(t *testing.T) {
	bin := nginxBin(t)
	srv := eventstest.Start(t, "")
	nc, js := srv.Connect(t)
	got := collect(t, js, "web")
	// One window holds the whole run (flushed by hand below), so the
	// percentiles are over every request, not a slice of them.
	const win = time.Hour
	if until := time.Until(time.Now().Truncate(win).Add(win)); until < time.Minute {
		time.Sleep(until + time.Second)
	}
	svc := startService(t, nc, win)

	const baseA, baseB = 20 * time.Millisecond, 80 * time.Millisecond
	a, hitsA := shapedBackend(t, baseA, 0)
	b, hitsB := shapedBackend(t, baseB, 10)
	addrA, portA := hostPort(t, a)
	addrB, portB := hostPort(t, b)
	publishRouting(t, js, events.RoutingState{
		App:       events.App{Metadata: events.Metadata{Name: "web"}},
		Instances: []events.Instance{{ID: "a", IP: "127.0.0.1", Port: portA}, {ID: "b", IP: "127.0.0.1", Port: portB}},
		Revision:  1,
	})
	waitFor(t, 10*time.Second, "app web known", func() bool { return svc.agg.Known("web") })

	port, statusPort := freePort(t), freePort(t)
	startNginx(t, bin, webConf(svc.Addr().String(), port, statusPort, addrA, addrB), port)

	// A node reports its config live, with a change it serves for the first
	// time: a reload, a convergence of 350 ms, and its status server.
	changed := time.Now().UTC()
	live := changed.Add(350 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := events.Publish(ctx, js, "test", events.ConfigRendered("test-node"), events.RenderReport{
		Node: "test-node", Version: 7, Attempted: 7, Outcome: events.OutcomeApplied, Revision: 1,
		StatusAddr: "127.0.0.1:" + strconv.Itoa(statusPort), LiveAt: &live,
		Served: []events.ServedChange{{App: "web", Revision: 1, ChangedAt: changed}},
	}); err != nil {
		t.Fatal(err)
	}

	notAfter := time.Now().Add(30 * 24 * time.Hour).Truncate(time.Second).UTC()
	if _, err := events.Publish(ctx, js, "test", events.CertIssued("shop.example.com"), events.Certificate{
		Domain: "shop.example.com", Serial: "1", NotBefore: notAfter.Add(-90 * 24 * time.Hour), NotAfter: notAfter, Issuer: "test CA",
	}); err != nil {
		t.Fatal(err)
	}

	// 400 requests, 10 at a time: NGINX's round robin (one worker) gives
	// each backend 200, two whole cycles of its distribution.
	const n = 400
	start := time.Now()
	status5xx := get(t, port, n, 10)[5]
	t.Logf("%d requests in %v", n, time.Since(start).Round(time.Millisecond))
	if hitsA.Load() != n/2 || hitsB.Load() != n/2 {
		t.Fatalf("backends got %d and %d requests, want %d each (round robin)", hitsA.Load(), hitsB.Load(), n/2)
	}
	waitFor(t, 10*time.Second, "every line counted", func() bool { return svc.Counters().Lines.Load() >= n })
	fctx, fcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer fcancel()
	svc.flush(fctx, time.Now())
	waitFor(t, 10*time.Second, "the window published", func() bool {
		ta, _ := got.totals(addrA)
		tb, _ := got.totals(addrB)
		return ta.Requests+tb.Requests >= n
	})

	for _, c := range []struct {
		name     string
		addr     string
		base     time.Duration
		want5xx  int64
		wantLe   map[string]int // cumulative Prometheus buckets
		wantRate float64
	}{
		{"A", addrA, baseA, 0, map[string]int{"0.01": 0, "0.05": 196, "0.25": 200}, 0},
		{"B", addrB, baseB, 20, map[string]int{"0.075": 0, "0.25": 196, "0.75": 200}, 0.10},
	} {
		sum, windows := got.totals(c.addr)
		if len(windows) != 1 {
			t.Fatalf("%s listed in %d windows, want 1", c.name, len(windows))
		}
		w := windows[0]
		for _, p := range []struct {
			q        string
			got      float64
			injected time.Duration
		}{{"p50", w.P50MS, c.base}, {"p95", w.P95MS, 2 * c.base}, {"p99", w.P99MS, 5 * c.base}} {
			pub := time.Duration(p.got * float64(time.Millisecond))
			t.Logf("backend %s %s: injected %v, published %v", c.name, p.q, p.injected, pub)
			if pub < p.injected*98/100 || pub > p.injected*110/100+10*time.Millisecond {
				t.Errorf("backend %s %s = %v, want %v (-2%%, +10%% +10ms)", c.name, p.q, pub, p.injected)
			}
		}
		rate := float64(sum.Status5xx) / float64(sum.Requests)
		t.Logf("backend %s 5xx rate: injected %.2f, published %.2f (%d of %d)", c.name, c.wantRate, rate, sum.Status5xx, sum.Requests)
		if sum.Requests != n/2 || sum.Status5xx != c.want5xx || sum.Status2xx != n/2-c.want5xx {
			t.Errorf("backend %s: %+v, want %d requests, %d of them 5xx", c.name, sum, n/2, c.want5xx)
		}
		body := scrape(t, svc)
		for le, want := range c.wantLe {
			series := fmt.Sprintf(`orchestry_upstream_request_duration_seconds_bucket{app="web",instance=%q,le=%q} `, c.addr, le)
			got := -1
			for _, l := range strings.Split(body, "\n") {
				if v, ok := strings.CutPrefix(l, series); ok {
					got, _ = strconv.Atoi(v)
				}
			}
			// A few requests may be late (a loaded machine), none early.
			if got > want || got < want-want*3/100 {
				t.Errorf("%s= %d, want %d (-3%%)", series, got, want)
			}
		}
	}
	if status5xx != 20 {
		t.Errorf("clients got %d 5xx, want 20", status5xx)
	}

	body := scrape(t, svc)
	for _, want := range []string{
		`orchestry_app_requests_total{app="web",code_class="2xx"} 380`,
		`orchestry_app_requests_total{app="web",code_class="5xx"} 20`,
		`orchestry_app_request_duration_seconds_count{app="web"} 400`,
		`orchestry_upstream_requests_total{app="web",code_class="5xx",instance="` + addrB + `"} 20`,
		`orchestry_nginx_up{node="test-node"} 1`,
		`orchestry_nginx_serving_config_version{node="test-node"} 7`,
		`orchestry_config_reloads_total{node="test-node",outcome="applied"} 1`,
		`orchestry_config_last_reload_success{node="test-node"} 1`,
		`orchestry_config_convergence_seconds_bucket{node="test-node",le="0.25"} 0`,
		`orchestry_config_convergence_seconds_bucket{node="test-node",le="0.5"} 1`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if want := fmt.Sprintf(`orchestry_certificate_expiry_timestamp_seconds{domain="shop.example.com"} %d`, notAfter.Unix()); !strings.Contains(body, want+"\n") {
		// Prometheus writes large values in exponent form.
		if !strings.Contains(body, fmt.Sprintf(`orchestry_certificate_expiry_timestamp_seconds{domain="shop.example.com"} %g`, float64(notAfter.Unix()))+"\n") {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	checkDashboard(t, body)

	// stub_status counted every request (and this scrape's connection).
	var reqs, active float64
	for _, l := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(l, `orchestry_nginx_http_requests_total{node="test-node"} `); ok {
			reqs, _ = strconv.ParseFloat(v, 64)
		}
		if v, ok := strings.CutPrefix(l, `orchestry_nginx_connections{node="test-node",state="active"} `); ok {
			active, _ = strconv.ParseFloat(v, 64)
		}
	}
	t.Logf("stub_status: %v requests, %v active connections", reqs, active)
	if reqs < n || active < 1 {
		t.Errorf("stub_status scrape: %v requests, %v active; want at least %d and 1", reqs, active, n)
	}
}

// checkDashboard checks that deploy/grafana/orchestry.json is valid JSON
// and that every series its queries name is in body (a /metrics page).
func checkDashboard(t *testing.T, body string) {
	t.Helper()
	raw, err := os.ReadFile("../../deploy/grafana/orchestry.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	names := regexp.MustCompile(`orchestry_[a-z_]+`)
	n := 0
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			for _, name := range names.FindAllString(tg.Expr, -1) {
				n++
				if !strings.Contains(body, "\n"+name+"{") && !strings.Contains(body, "\n"+name+" ") {
					t.Errorf("dashboard panel %q queries %s, which /metrics does not have", p.Title, name)
				}
			}
		}
	}
	if n < 20 {
		t.Errorf("dashboard queries only %d series", n)
	}
}
