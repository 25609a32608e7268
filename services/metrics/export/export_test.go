package export

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/orchestry/orchestry/pkg/events"
)

func TestObserveCumulatesWindowsAndDropsStaleSeries(t *testing.T) {
	e := New(func() map[string]int64 { return map[string]int64{"counted": 7, "bad_json": 2} })
	win := []events.UpstreamMetrics{{App: "web", WindowSeconds: 10, Instances: []events.InstanceTraffic{
		{Address: "10.0.0.1:80", Requests: 10, Status2xx: 6, Status5xx: 3, GatewayErrors: 2, Retries: 1, Bytes: 100, P50MS: 20, P95MS: 40, P99MS: 80},
	}}}
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
