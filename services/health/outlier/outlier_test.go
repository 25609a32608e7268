package outlier

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/orchestry/orchestry/pkg/events"
)

var defaults = Rules{ConsecutiveGateway: 5, Consecutive5xx: 5, FailurePercent: 50, MinRequests: 10}

func TestCheck(t *testing.T) {
	tests := []struct {
		name  string
		rules Rules
		t     events.InstanceTraffic
		want  string
	}{
		{"clean", defaults, events.InstanceTraffic{Requests: 100, Status2xx: 100}, ""},
		{"no requests ignores a carried run", defaults, events.InstanceTraffic{Consecutive5xx: 9, ConsecutiveGatewayErrors: 9}, ""},
		{"80% of 20", defaults, events.InstanceTraffic{Requests: 20, Status5xx: 16, Consecutive5xx: 2}, "5xx 80% of 20 requests"},
		{"exactly at the percentage", defaults, events.InstanceTraffic{Requests: 10, Status5xx: 5}, "5xx 50% of 10 requests"},
		{"just below the percentage", defaults, events.InstanceTraffic{Requests: 10, Status5xx: 4}, ""},
		{"below min requests", defaults, events.InstanceTraffic{Requests: 9, Status5xx: 9, Consecutive5xx: 4}, ""},
		{"min requests 0 still needs one", Rules{FailurePercent: 50}, events.InstanceTraffic{Requests: 1, Status5xx: 1}, "5xx 100% of 1 requests"},
		{"gateway run at threshold", defaults, events.InstanceTraffic{Requests: 6, Status5xx: 6, GatewayErrors: 6, ConsecutiveGatewayErrors: 5, Consecutive5xx: 5}, "5 consecutive gateway errors"},
		{"gateway run carried from an earlier window", defaults, events.InstanceTraffic{Requests: 2, Status5xx: 2, ConsecutiveGatewayErrors: 6, Consecutive5xx: 6}, "6 consecutive gateway errors"},
		{"5xx run without gateway errors", defaults, events.InstanceTraffic{Requests: 100, Status5xx: 6, Consecutive5xx: 6, ConsecutiveGatewayErrors: 0}, "6 consecutive 5xx"},
		{"runs below thresholds", defaults, events.InstanceTraffic{Requests: 100, Status5xx: 8, Consecutive5xx: 4, ConsecutiveGatewayErrors: 4}, ""},
		{"gateway rule disabled", Rules{Consecutive5xx: 0, ConsecutiveGateway: 0, FailurePercent: 0}, events.InstanceTraffic{Requests: 9, Status5xx: 9, Consecutive5xx: 9, ConsecutiveGatewayErrors: 9}, ""},
		{"only 5xx rule", Rules{Consecutive5xx: 3}, events.InstanceTraffic{Requests: 3, Status5xx: 3, Consecutive5xx: 3, ConsecutiveGatewayErrors: 3}, "3 consecutive 5xx"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.rules.Check(tc.t).Why; got != tc.want {
				t.Fatalf("Check = %q, want %q", got, tc.want)
			}
		})
	}
	if (Rules{}).Enabled() || !defaults.Enabled() {
		t.Fatal("Enabled wrong")
	}
}

func TestMaxOut(t *testing.T) {
	tests := []struct{ total, percent, want int }{
		{1, 50, 0}, {2, 50, 1}, {3, 50, 1}, {4, 50, 2}, {5, 50, 2},
		{9, 10, 0}, {10, 10, 1}, {19, 10, 1}, {1, 100, 1}, {4, 0, 0}, {0, 50, 0}, {4, 150, 4},
	}
	for _, tc := range tests {
		if got := MaxOut(tc.total, tc.percent); got != tc.want {
			t.Errorf("MaxOut(%d, %d) = %d, want %d", tc.total, tc.percent, got, tc.want)
		}
	}
}

func TestBackoff(t *testing.T) {
	b := Backoff{Base: 30 * time.Second, Max: 5 * time.Minute}
	want := []time.Duration{0, 30 * time.Second, time.Minute, 2 * time.Minute, 4 * time.Minute, 5 * time.Minute, 5 * time.Minute}
	for n, w := range want {
		if got := b.Duration(n); got != w {
			t.Errorf("Duration(%d) = %s, want %s", n, got, w)
		}
	}
	if got := (Backoff{Base: time.Minute, Max: time.Second}).Duration(3); got != time.Minute {
		t.Errorf("max below base: %s, want the base", got)
	}
	if got := (Backoff{Base: time.Hour, Max: 1 << 62}).Duration(1000); got != 1<<62 {
		t.Errorf("no overflow: %s", got)
	}

	t0 := time.Unix(1_000_000, 0)
	tests := []struct {
		name  string
		h     History
		at    time.Time
		wantN int
		wantD time.Duration
	}{
		{"first ejection", History{}, t0, 1, 30 * time.Second},
		{"repeat right after return", History{Ejections: 1, Returned: t0}, t0.Add(time.Second), 2, time.Minute},
		{"third in a row", History{Ejections: 2, Returned: t0}, t0.Add(29 * time.Second), 3, 2 * time.Minute},
		{"one base back in service steps down one", History{Ejections: 3, Returned: t0}, t0.Add(30 * time.Second), 3, 2 * time.Minute},
		{"two bases step down two", History{Ejections: 3, Returned: t0}, t0.Add(65 * time.Second), 2, time.Minute},
		{"fully decayed", History{Ejections: 3, Returned: t0}, t0.Add(time.Hour), 1, 30 * time.Second},
		{"capped count stops growing", History{Ejections: 5, Returned: t0}, t0.Add(time.Second), 5, 5 * time.Minute},
		{"from the cap one step down", History{Ejections: 5, Returned: t0}, t0.Add(31 * time.Second), 5, 5 * time.Minute},
		{"from the cap two steps down", History{Ejections: 5, Returned: t0}, t0.Add(61 * time.Second), 4, 4 * time.Minute},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, d := b.Next(tc.h, tc.at)
			if n != tc.wantN || d != tc.wantD {
				t.Fatalf("Next = %d, %s; want %d, %s", n, d, tc.wantN, tc.wantD)
			}
		})
	}
}

func TestReason(t *testing.T) {
	if r := Reason("5xx 80% of 20 requests", 2*time.Minute); r != "outlier: 5xx 80% of 20 requests; ejected for 2m0s" {
		t.Fatalf("Reason = %q", r)
	}
}

func TestPlan(t *testing.T) {
	bad := func(addr string) events.InstanceTraffic {
		return events.InstanceTraffic{Address: addr, Requests: 20, Status5xx: 16}
	}
	worse := func(addr string) events.InstanceTraffic {
		return events.InstanceTraffic{Address: addr, Requests: 20, Status5xx: 20, Consecutive5xx: 20, ConsecutiveGatewayErrors: 20}
	}
	good := func(addr string) events.InstanceTraffic {
		return events.InstanceTraffic{Address: addr, Requests: 20, Status2xx: 20}
	}
	inst := func(n int, unhealthy ...int) []Instance {
		var out []Instance
		for i := range n {
			out = append(out, Instance{
				Key:     fmt.Sprintf("k%d", i),
				Addr:    netip.MustParseAddrPort(fmt.Sprintf("10.0.0.%d:80", i)),
				Healthy: !slices.Contains(unhealthy, i),
			})
		}
		return out
	}
	addr := func(i int) string { return fmt.Sprintf("10.0.0.%d:80", i) }
	shared := append(inst(4), Instance{Key: "k0b", Addr: netip.MustParseAddrPort("10.0.0.0:80"), Healthy: true})
	tests := []struct {
		name      string
		instances []Instance
		traffic   []events.InstanceTraffic
		percent   int
		eject     []string
		held      []string
	}{
		{"one outlier of four", inst(4), []events.InstanceTraffic{bad(addr(1)), good(addr(0)), good(addr(2))}, 50, []string{"k1"}, nil},
		{"three of four: two by max percent", inst(4), []events.InstanceTraffic{bad(addr(0)), bad(addr(1)), bad(addr(2))}, 50, []string{"k0", "k1"}, []string{"k2"}},
		{"worst first", inst(4), []events.InstanceTraffic{bad(addr(0)), bad(addr(1)), worse(addr(2))}, 50, []string{"k2", "k0"}, []string{"k1"}},
		{"single instance never", inst(1), []events.InstanceTraffic{bad(addr(0))}, 50, nil, []string{"k0"}},
		{"unhealthy count as out", inst(4, 3), []events.InstanceTraffic{bad(addr(0)), bad(addr(1))}, 50, []string{"k0"}, []string{"k1"}},
		{"already out not ejected again", inst(4, 1), []events.InstanceTraffic{bad(addr(1))}, 50, nil, nil},
		{"max percent 0 disables", inst(4), []events.InstanceTraffic{bad(addr(1))}, 0, nil, []string{"k1"}},
		{"unknown address ignored", inst(4), []events.InstanceTraffic{bad("10.9.9.9:80")}, 50, nil, nil},
		{"shared address ejects all", shared, []events.InstanceTraffic{bad(addr(0))}, 50, []string{"k0", "k0b"}, nil},
		{"shared address held as a whole", shared, []events.InstanceTraffic{worse(addr(1)), bad(addr(0))}, 50, []string{"k1"}, []string{"k0", "k0b"}},
		{"ipv4-mapped spelling matches", inst(4), []events.InstanceTraffic{bad("[::ffff:10.0.0.3]:80")}, 50, []string{"k3"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ej, held := defaults.Plan(tc.instances, tc.traffic, tc.percent)
			var keys []string
			for _, e := range ej {
				keys = append(keys, e.Key)
				if e.Why == "" {
					t.Errorf("%s ejected without a reason", e.Key)
				}
			}
			if !slices.Equal(keys, tc.eject) || !slices.Equal(held, tc.held) {
				t.Fatalf("eject %v held %v; want eject %v held %v", keys, held, tc.eject, tc.held)
			}
		})
	}
}
