package window

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/orchestry/orchestry/pkg/events"
	"github.com/orchestry/orchestry/services/metrics/accesslog"
	"github.com/orchestry/orchestry/services/metrics/latency"
)

var t0 = time.Date(2025, 11, 25, 9, 30, 0, 0, time.UTC)

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// req is a record of app with one attempt per "addr status" pair.
func req(app string, bytes int64, attempts ...accesslog.Attempt) *accesslog.Record {
	for i := range attempts {
		attempts[i].Retry = i > 0
	}
	return &accesslog.Record{Node: "n1", App: app, Status: 200, Bytes: bytes, Attempts: attempts}
}

func at(addr string, status int, rt time.Duration) accesslog.Attempt {
	return accesslog.Attempt{Addr: ap(addr), Status: status, ResponseTime: rt, ConnectTime: accesslog.Unknown, HeaderTime: accesslog.Unknown}
}

func add(t *testing.T, a *Aggregator, r *accesslog.Record) Added {
	t.Helper()
	res, err := a.Add(r)
	if err != nil {
		t.Fatalf("Add: %v", err)
	}
	return res
}

func find(t *testing.T, ms []events.UpstreamMetrics, app, addr string) events.InstanceTraffic {
	t.Helper()
	for _, m := range ms {
		if m.App != app {
			continue
		}
		for _, in := range m.Instances {
			if in.Address == addr {
				return in
			}
		}
	}
	t.Fatalf("no figures for %s %s in %+v", app, addr, ms)
	return events.InstanceTraffic{}
}

func TestCounts(t *testing.T) {
	a := New(100, t0)
	a.SetApp("web", []netip.AddrPort{ap("127.0.0.1:1"), ap("127.0.0.1:2")})
	a.SetApp("api", nil)

	if _, err := a.Add(req("forged", 0, at("127.0.0.1:1", 200, 0))); !errors.Is(err, ErrUnknownApp) {
		t.Fatalf("unknown app: err = %v", err)
	}
	add(t, a, req("web", 100, at("127.0.0.1:2", 200, 10*time.Millisecond)))
	add(t, a, req("web", 200, at("127.0.0.1:1", 502, 0), at("127.0.0.1:2", 200, 20*time.Millisecond)))
	add(t, a, req("web", 300, at("127.0.0.1:2", 500, 5*time.Millisecond)))
	add(t, a, req("web", 0, at("127.0.0.1:1", 301, 0), at("127.0.0.1:2", 404, 0)))
	res := add(t, a, req("web", 50, accesslog.Attempt{Status: 502, ResponseTime: 0})) // no server: group name
	if res.Unattributed != 1 || res.Attempts != 0 {
		t.Fatalf("no-server attempt: %+v", res)
	}
	add(t, a, req("api", 10)) // no upstream at all

	got := a.Flush(t0.Add(10 * time.Second))
	if len(got) != 2 || got[0].App != "api" || got[1].App != "web" {
		t.Fatalf("apps = %+v, want api and web, sorted", got)
	}
	if got[0].Instances != nil || got[0].WindowSeconds != 10 || !got[0].WindowStart.Equal(t0) {
		t.Fatalf("api = %+v", got[0])
	}
	for _, m := range got {
		if err := m.Validate(); err != nil {
			t.Fatalf("%s: %v", m.App, err)
		}
	}
	web := got[1].Instances
	if len(web) != 2 || web[0].Address != "127.0.0.1:1" || web[1].Address != "127.0.0.1:2" {
		t.Fatalf("web instances = %+v", web)
	}
	want1 := events.InstanceTraffic{Address: "127.0.0.1:1", Requests: 2, Status3xx: 1, Status5xx: 1, GatewayErrors: 1}
	want2 := events.InstanceTraffic{Address: "127.0.0.1:2", Requests: 4, Status2xx: 2, Status4xx: 1, Status5xx: 1,
		Retries: 2, Bytes: 100 + 200 + 300}
	w1, w2 := web[0], web[1]
	w1.P50MS, w1.P95MS, w1.P99MS = 0, 0, 0
	w2.P50MS, w2.P95MS, w2.P99MS = 0, 0, 0
	if w1 != want1 || w2 != want2 {
		t.Fatalf("counts\n got %+v\n     %+v\nwant %+v\n     %+v", w1, w2, want1, want2)
	}
	// 127.0.0.1:2 saw 10, 20, 5 and 0 ms: p50 is the rank-1 value, 5ms.
	if p := web[1].P50MS; math.Abs(p-5) > 5*latency.RelativeError {
		t.Fatalf("p50 = %v ms, want about 5", p)
	}

	if again := a.Flush(t0.Add(20 * time.Second)); len(again) != 0 {
		t.Fatalf("a window without traffic published %+v", again)
	}
}

func TestPercentiles(t *testing.T) {
	a := New(100, t0)
	a.SetApp("web", nil)
	rng := rand.New(rand.NewPCG(7, 8))
	var vals []time.Duration
	for range 50000 {
		// NGINX resolution: whole milliseconds, 5..200 ms.
		d := time.Duration(5+rng.IntN(196)) * time.Millisecond
		vals = append(vals, d)
		add(t, a, req("web", 1, at("10.0.0.1:80", 200, d)))
	}
	slices.Sort(vals)
	in := find(t, a.Flush(t0.Add(time.Second)), "web", "10.0.0.1:80")
	for _, c := range []struct {
		q   float64
		got float64
	}{{0.5, in.P50MS}, {0.95, in.P95MS}, {0.99, in.P99MS}} {
		want := float64(vals[int(c.q*float64(len(vals)-1))]) / float64(time.Millisecond)
		if rel := math.Abs(c.got-want) / want; rel > 0.02 {
			t.Errorf("p%v = %.3f ms, want %.3f ms within 2%% (off by %.2f%%)", c.q*100, c.got, want, rel*100)
		}
	}
}

func TestTrailingRunsAcrossWindows(t *testing.T) {
	a := New(100, t0)
	a.SetApp("web", []netip.AddrPort{ap("10.0.0.1:80"), ap("10.0.0.2:80")})
	x, y := "10.0.0.1:80", "10.0.0.2:80"
	add(t, a, req("web", 0, at(x, 200, 0)))
	add(t, a, req("web", 0, at(x, 502, 0)))
	add(t, a, req("web", 0, at(x, 500, 0)))
	add(t, a, req("web", 0, at(x, 504, 0)))
	add(t, a, req("web", 0, at(y, 503, 0)))
	w := a.Flush(t0.Add(10 * time.Second))
	if in := find(t, w, "web", x); in.Consecutive5xx != 3 || in.ConsecutiveGatewayErrors != 1 || in.GatewayErrors != 2 {
		t.Fatalf("window 1 x: %+v; want 3 consecutive 5xx, 1 consecutive gateway error", in)
	}

	// Window 2: x goes on failing; y has no traffic (not listed, run kept).
	add(t, a, req("web", 0, at(x, 502, 0)))
	add(t, a, req("web", 0, at(x, 503, 0)))
	w = a.Flush(t0.Add(20 * time.Second))
	if in := find(t, w, "web", x); in.Consecutive5xx != 5 || in.ConsecutiveGatewayErrors != 3 || in.Requests != 2 {
		t.Fatalf("window 2 x: %+v; want runs 5 and 3 carried over", in)
	}
	if len(w[0].Instances) != 1 {
		t.Fatalf("window 2 lists %+v; want only x", w[0].Instances)
	}

	// Window 3: y goes on from its carried run; x recovers.
	add(t, a, req("web", 0, at(y, 502, 0)))
	add(t, a, req("web", 0, at(x, 503, 0), at(x, 200, 0)))
	w = a.Flush(t0.Add(30 * time.Second))
	if in := find(t, w, "web", y); in.Consecutive5xx != 2 || in.ConsecutiveGatewayErrors != 2 {
		t.Fatalf("window 3 y: %+v; want runs of 2 (1 carried + 1)", in)
	}
	if in := find(t, w, "web", x); in.Consecutive5xx != 0 || in.ConsecutiveGatewayErrors != 0 || in.Retries != 1 {
		t.Fatalf("window 3 x: %+v; want runs ended by the 200", in)
	}

	// A 500 ends a gateway run but not a 5xx run; "-" ends neither.
	add(t, a, req("web", 0, at(y, 500, 0)))
	add(t, a, req("web", 0, at(y, 0, 0)))
	w = a.Flush(t0.Add(40 * time.Second))
	if in := find(t, w, "web", y); in.Consecutive5xx != 3 || in.ConsecutiveGatewayErrors != 0 {
		t.Fatalf("window 4 y: %+v; want 5xx run 3, gateway run 0", in)
	}

	// Removing the app forgets its runs; re-adding starts afresh.
	a.RemoveApp("web")
	if _, err := a.Add(req("web", 0, at(y, 500, 0))); !errors.Is(err, ErrUnknownApp) {
		t.Fatalf("removed app: err = %v", err)
	}
	a.SetApp("web", []netip.AddrPort{ap(y)})
	add(t, a, req("web", 0, at(y, 500, 0)))
	w = a.Flush(t0.Add(50 * time.Second))
	if in := find(t, w, "web", y); in.Consecutive5xx != 1 {
		t.Fatalf("after re-adding: %+v; want a fresh run of 1", in)
	}
}

func TestCardinalityCap(t *testing.T) {
	const limit = 100
	a := New(limit, t0)
	instances := []netip.AddrPort{ap("10.0.0.1:80"), ap("10.0.0.2:80")}
	a.SetApp("web", instances)
	// Thousands of forged addresses arrive first, all failing.
	folded := 0
	for i := range 5000 {
		addr := fmt.Sprintf("192.0.%d.%d:%d", i/256%256, i%256, 1000+i%50000)
		res := add(t, a, req("web", 0, at(addr, 502, time.Millisecond)))
		folded += res.Folded
	}
	if want := 5000 - (limit - len(instances)); folded != want {
		t.Fatalf("folded %d attempts, want %d", folded, want)
	}
	// The real instances still have room.
	for _, in := range instances {
		if res := add(t, a, req("web", 0, at(in.String(), 200, time.Millisecond))); res.Folded != 0 {
			t.Fatalf("instance %s folded", in)
		}
	}
	// Nothing more fits.
	if res := add(t, a, req("web", 0, at("203.0.113.1:1", 200, 0))); res.Folded != 1 {
		t.Fatalf("an address beyond the cap was listed: %+v", res)
	}
	w := a.Flush(t0.Add(time.Second))
	if n := len(w[0].Instances); n != limit {
		t.Fatalf("listed %d addresses, want %d", n, limit)
	}
	if err := w[0].Validate(); err != nil {
		t.Fatal(err)
	}
	// Carried runs of forged addresses die with the window that saw them.
	a.mu.Lock()
	carried := len(a.known["web"].runs)
	a.mu.Unlock()
	if carried > limit {
		t.Fatalf("%d runs carried, want at most %d", carried, limit)
	}
	a.Flush(t0.Add(2 * time.Second))
	a.mu.Lock()
	carried = len(a.known["web"].runs)
	a.mu.Unlock()
	if carried != 0 {
		t.Fatalf("%d runs of forged addresses carried through a quiet window", carried)
	}
}

func TestConcurrent(t *testing.T) {
	a := New(100, t0)
	a.SetApp("web", nil)
	var wg sync.WaitGroup
	const workers, each = 4, 2000
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				addr := fmt.Sprintf("10.0.%d.%d:80", w, i%10)
				if _, err := a.Add(req("web", 1, at(addr, 200, time.Millisecond))); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	var total int64
	stop := make(chan struct{})
	var fl sync.WaitGroup
	fl.Go(func() {
		for i := 1; ; i++ {
			for _, m := range a.Flush(t0.Add(time.Duration(i) * time.Millisecond)) {
				for _, in := range m.Instances {
					total += in.Requests
				}
			}
			select {
			case <-stop:
				return
			default:
			}
		}
	})
	wg.Wait()
	close(stop)
	fl.Wait()
	for _, m := range a.Flush(t0.Add(time.Hour)) {
		for _, in := range m.Instances {
			total += in.Requests
		}
	}
	if total != workers*each {
		t.Fatalf("counted %d requests over all windows, want %d", total, workers*each)
	}
}
