package export

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/orchestry/orchestry/pkg/events"
	"github.com/orchestry/orchestry/services/metrics/accesslog"
	"github.com/orchestry/orchestry/services/metrics/window"
)

func TestObserveCumulatesWindowsAndDropsStaleSeries(t *testing.T) {
	e := New(func() map[string]int64 { return map[string]int64{"counted": 7, "bad_json": 2} })
	win := []window.AppWindow{{Metrics: events.UpstreamMetrics{App: "web", WindowSeconds: 10, Instances: []events.InstanceTraffic{
		{Address: "10.0.0.1:80", Requests: 10, Status2xx: 6, Status5xx: 3, GatewayErrors: 2, Retries: 1, Bytes: 100, P50MS: 20, P95MS: 40, P99MS: 80},
	}}, Dists: []window.Distribution{{}}}}
	e.Observe(win)
	e.Observe(win)
	for _, tc := range []struct {
		class string
		want  float64
	}{{"2xx", 12}, {"5xx", 6}, {"other", 2}, {"4xx", 0}} {
		if got := testutil.ToFloat64(e.requests.WithLabelValues("web", "10.0.0.1:80", tc.class)); got != tc.want {
			t.Errorf("requests %s = %v, want %v", tc.class, got, tc.want)
		}
	}
	if got := testutil.ToFloat64(e.latency.WithLabelValues("web", "10.0.0.1:80", "0.99")); got != 0.08 {
		t.Errorf("p99 = %v s, want 0.08", got)
	}
	if n := testutil.CollectAndCount(e.reg, "orchestry_metrics_log_lines_total"); n != 2 {
		t.Errorf("%d line results, want 2", n)
	}
	for range staleWindows {
		e.Observe(nil)
	}
	if n := testutil.CollectAndCount(e.reg, "orchestry_upstream_requests_total"); n != 0 {
		t.Errorf("%d request series left after %d idle windows, want 0", n, staleWindows)
	}
}

// dist is a Distribution of the given durations.
func dist(ds ...time.Duration) window.Distribution {
	var d window.Distribution
	for _, x := range ds {
		d.Observe(x)
	}
	return d
}

func TestHistogramsAndGroups(t *testing.T) {
	e := New(func() map[string]int64 { return nil })
	ms := time.Millisecond
	e.Observe([]window.AppWindow{{
		Metrics: events.UpstreamMetrics{App: "web", Instances: []events.InstanceTraffic{{Address: "10.0.0.1:80", Requests: 3, Status2xx: 3}}},
		Dists:   []window.Distribution{dist(20*ms, 20*ms, 80*ms)},
		Folded:  &window.Figures{Traffic: events.InstanceTraffic{Requests: 2, Status5xx: 2, GatewayErrors: 2}, Dist: dist(0, 0)},
		None:    &window.Figures{Traffic: events.InstanceTraffic{Requests: 1, Status5xx: 1}, Dist: dist(0)},
		Requests: window.Figures{Traffic: events.InstanceTraffic{Requests: 6, Status2xx: 3, Status5xx: 2, Status4xx: 1},
			Dist: dist(20*ms, 20*ms, 80*ms, 0, 0, 0)},
	}})
	if got := testutil.ToFloat64(e.requests.WithLabelValues("web", FoldedInstance, "5xx")); got != 2 {
		t.Errorf("folded 5xx = %v, want 2", got)
	}
	if got := testutil.ToFloat64(e.requests.WithLabelValues("web", NoneInstance, "5xx")); got != 1 {
		t.Errorf("unattributed 5xx = %v, want 1", got)
	}
	if got := testutil.ToFloat64(e.appReqs.WithLabelValues("web", "4xx")); got != 1 {
		t.Errorf("app 4xx = %v, want 1", got)
	}
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, mf := range mfs {
		switch mf.GetName() {
		case "orchestry_upstream_request_duration_seconds":
			for _, m := range mf.GetMetric() {
				if m.GetLabel()[1].GetValue() != "10.0.0.1:80" {
					continue
				}
				found++
				h := m.GetHistogram()
				for _, b := range h.GetBucket() {
					want := map[float64]uint64{0.01: 0, 0.025: 2, 0.05: 2, 0.075: 2, 0.1: 3}[b.GetUpperBound()]
					if b.GetUpperBound() >= 0.01 && b.GetUpperBound() <= 0.1 && b.GetCumulativeCount() != want {
						t.Errorf("le=%v: %d, want %d", b.GetUpperBound(), b.GetCumulativeCount(), want)
					}
				}
				if h.GetSampleCount() != 3 || math.Abs(h.GetSampleSum()-0.12) > 1e-9 {
					t.Errorf("count %d sum %v, want 3 and 0.12", h.GetSampleCount(), h.GetSampleSum())
				}
			}
		case "orchestry_app_request_duration_seconds":
			found++
			if n := mf.GetMetric()[0].GetHistogram().GetSampleCount(); n != 6 {
				t.Errorf("app histogram count %d, want 6", n)
			}
		}
	}
	if found != 2 {
		t.Errorf("found %d of the 2 histograms", found)
	}
}

// TestSeriesBoundedByCap runs thousands of addresses through a window with
// the cap: the series stay within the cap plus the two groups.
func TestSeriesBoundedByCap(t *testing.T) {
	const limit = 50
	agg := window.New(limit, time.Unix(0, 0))
	agg.SetApp("web", nil)
	p := accesslog.NewParser()
	for i := range 5000 {
		line := fmt.Sprintf(`{"v":1,"node":"n1","app":"web","ts":"1.000","status":"502","request_time":"0.001","upstream_addr":"10.%d.%d.1:80","upstream_status":"502","upstream_connect_time":"-","upstream_header_time":"-","upstream_response_time":"0.001","bytes_sent":"1"}`, i/256, i%256)
		r, err := p.Parse([]byte(line))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := agg.Add(r); err != nil {
			t.Fatal(err)
		}
	}
	e := New(func() map[string]int64 { return nil })
	e.Observe(agg.FlushAll(time.Unix(1, 0)))
	if n := testutil.CollectAndCount(e.reg, "orchestry_upstream_request_duration_seconds"); n != limit+1 {
		t.Errorf("%d histogram series, want %d addresses + other", n, limit)
	}
	if got := testutil.ToFloat64(e.requests.WithLabelValues("web", FoldedInstance, "5xx")); got != 5000-limit {
		t.Errorf("folded = %v, want %d", got, 5000-limit)
	}
}

func TestFleet(t *testing.T) {
	e := New(func() map[string]int64 { return nil })
	f := e.Fleet
	live := time.Unix(1000, 0)
	f.Report(events.RenderReport{Node: "n1", Outcome: events.OutcomeApplied, Version: 3, LiveAt: &live,
		Served: []events.ServedChange{{App: "web", Revision: 4, ChangedAt: live.Add(-400 * time.Millisecond)}}}, true)
	f.Report(events.RenderReport{Node: "n1", Outcome: events.OutcomeInvalid, Version: 3}, false)
	f.Report(events.RenderReport{Node: "n1", Outcome: events.OutcomeApplied, Version: 4, LiveAt: &live, StatusAddr: "127.0.0.1:8091",
		Served: []events.ServedChange{{App: "web", Revision: 5, ChangedAt: live.Add(-700 * time.Millisecond)}, {App: "api", Revision: 2, ChangedAt: live.Add(time.Second)},
			{App: "replayed", Revision: 1}}}, false) // untimed (zero ChangedAt): not observed
	f.Report(events.RenderReport{Node: "n1", Outcome: events.OutcomeUnchanged, Version: 4}, false)
	f.Certificate(events.Certificate{Domain: "shop.example.com", NotAfter: time.Unix(2000, 0)})
	for _, tc := range []struct {
		name string
		c    prometheus.Collector
		want float64
	}{
		{"applied (the replayed one not counted)", f.reloads.WithLabelValues("n1", "applied"), 1},
		{"invalid", f.reloads.WithLabelValues("n1", "invalid"), 1},
		{"last success", f.lastOK.WithLabelValues("n1"), 1},
		{"last success time", f.lastOKTime.WithLabelValues("n1"), 1000},
		{"version", f.version.WithLabelValues("n1"), 4},
		{"cert expiry", f.certExpiry.WithLabelValues("shop.example.com"), 2000},
	} {
		if got := testutil.ToFloat64(tc.c); got != tc.want {
			t.Errorf("%s = %v, want %v", tc.name, got, tc.want)
		}
	}
	if n := testutil.CollectAndCount(f.reloads); n != 2 {
		t.Errorf("%d reload series, want 2 (unchanged is no reload)", n)
	}
	const want = `
# HELP orchestry_config_convergence_seconds From the publish time of a routing.changed to the moment the node serves it (its renderer confirmed the config live), per change served.
# TYPE orchestry_config_convergence_seconds histogram
orchestry_config_convergence_seconds_bucket{node="n1",le="0.05"} 1
orchestry_config_convergence_seconds_bucket{node="n1",le="0.1"} 1
orchestry_config_convergence_seconds_bucket{node="n1",le="0.25"} 1
orchestry_config_convergence_seconds_bucket{node="n1",le="0.5"} 1
orchestry_config_convergence_seconds_bucket{node="n1",le="0.75"} 2
orchestry_config_convergence_seconds_bucket{node="n1",le="1"} 2
orchestry_config_convergence_seconds_bucket{node="n1",le="1.5"} 2
orchestry_config_convergence_seconds_bucket{node="n1",le="2"} 2
orchestry_config_convergence_seconds_bucket{node="n1",le="3"} 2
orchestry_config_convergence_seconds_bucket{node="n1",le="5"} 2
orchestry_config_convergence_seconds_bucket{node="n1",le="10"} 2
orchestry_config_convergence_seconds_bucket{node="n1",le="30"} 2
orchestry_config_convergence_seconds_bucket{node="n1",le="60"} 2
orchestry_config_convergence_seconds_bucket{node="n1",le="120"} 2
orchestry_config_convergence_seconds_bucket{node="n1",le="300"} 2
orchestry_config_convergence_seconds_bucket{node="n1",le="+Inf"} 2
orchestry_config_convergence_seconds_sum{node="n1"} 0.7
orchestry_config_convergence_seconds_count{node="n1"} 2
`
	if err := testutil.CollectAndCompare(f.convergence, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	if got := f.StatusTargets(); len(got) != 1 || got["n1"] != "127.0.0.1:8091" {
		t.Errorf("status targets %v", got)
	}
}
