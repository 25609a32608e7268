package auto

import (
	"maps"
	"testing"
	"time"

	"github.com/orchestry/orchestry/pkg/events"
)

var three = []events.Instance{
	{ID: "a", IP: "10.0.0.1", Port: 80},
	{ID: "b", IP: "10.0.0.2", Port: 80},
	{ID: "c", IP: "10.0.0.3", Port: 80},
}

// window is a 10 s window with requests and median latency per instance
// (in the order of three).
func window(reqs []int64, p50 []float64) events.UpstreamMetrics {
	m := events.UpstreamMetrics{App: "web", WindowSeconds: 10}
	for i := range reqs {
		m.Instances = append(m.Instances, events.InstanceTraffic{
			Address: three[i].IP + ":80", Requests: reqs[i], P50MS: p50[i]})
	}
	return m
}

var th = Thresholds{HighRate: 100, Windows: 3, Interval: time.Minute}

func TestRecommend(t *testing.T) {
	leastConn := &events.AutoChoice{Method: events.LBLeastConn}
	weighted := &events.AutoChoice{Method: events.LBRoundRobin, Weights: map[string]int{"c": 1}}
	for _, tc := range []struct {
		name    string
		cur     *events.AutoChoice
		m       events.UpstreamMetrics
		method  string
		weights map[string]int
	}{
		{"quiet", nil, window([]int64{50, 50, 50}, []float64{10, 11, 12}), events.LBRoundRobin, nil},
		{"busy", nil, window([]int64{400, 400, 400}, []float64{10, 11, 12}), events.LBLeastConn, nil},
		{"just below the rate", nil, window([]int64{333, 333, 333}, []float64{10, 10, 10}), events.LBRoundRobin, nil},
		{"least_conn kept within the margin", leastConn, window([]int64{250, 250, 250}, []float64{10, 10, 10}), events.LBLeastConn, nil},
		{"least_conn left below it", leastConn, window([]int64{200, 200, 200}, []float64{10, 10, 10}), events.LBRoundRobin, nil},
		{"wide latency spread", nil, window([]int64{50, 50, 50}, []float64{10, 22, 50}), events.LBRoundRobin, map[string]int{"b": 3, "c": 1}},
		{"narrow spread", nil, window([]int64{50, 50, 50}, []float64{10, 14, 19}), events.LBRoundRobin, nil},
		{"spread kept within the margin", weighted, window([]int64{50, 50, 50}, []float64{10, 10, 16}), events.LBRoundRobin, map[string]int{"c": 3}},
		{"spread left", weighted, window([]int64{50, 50, 50}, []float64{10, 10, 14}), events.LBRoundRobin, nil},
		{"too few requests to judge: factors kept", weighted, window([]int64{50, 50, 5}, []float64{10, 10, 90}), events.LBRoundRobin, map[string]int{"c": 1}},
		{"sub-millisecond medians are not a spread", nil, window([]int64{50, 50, 50}, []float64{0.1, 0.3, 0.9}), events.LBRoundRobin, nil},
		{"unknown addresses count for the rate only", nil, events.UpstreamMetrics{App: "web", WindowSeconds: 1, Instances: []events.InstanceTraffic{
			{Address: "10.9.9.9:80", Requests: 500, P50MS: 1}, {Address: "10.0.0.1:80", Requests: 30, P50MS: 100}}}, events.LBLeastConn, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Recommend(tc.cur, three, tc.m, th)
			if got.Method != tc.method || !maps.Equal(got.Weights, tc.weights) || got.Reason == "" {
				t.Errorf("got %s %v (%s), want %s %v", got.Method, got.Weights, got.Reason, tc.method, tc.weights)
			}
		})
	}
}

func TestDamperWaitsForWindowsInARowAndTheInterval(t *testing.T) {
	d := NewDamper(th)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	busy := window([]int64{400, 400, 400}, []float64{10, 10, 10})
	quiet := window([]int64{10, 10, 10}, []float64{10, 10, 10})

	// Alternating figures never make a streak.
	for i := range 30 {
		m := busy
		if i%2 == 1 {
			m = quiet
		}
		if c, ok := d.Next("web", nil, three, m, now); ok {
			t.Fatalf("window %d: alternating figures changed the choice to %+v", i, c)
		}
	}
	// Three busy windows in a row do.
	var cur *events.AutoChoice
	for i := range 3 {
		c, ok := d.Next("web", cur, three, busy, now)
		if ok != (i == 2) {
			t.Fatalf("busy window %d: change %v", i+1, ok)
		}
		if ok {
			if c.Method != events.LBLeastConn || !c.Since.Equal(now) {
				t.Fatalf("choice %+v", c)
			}
			cur = &c
		}
	}
	// Quiet again: held for the interval, then let through.
	for i := range 5 {
		if c, ok := d.Next("web", cur, three, quiet, now.Add(10*time.Second)); ok {
			t.Fatalf("quiet window %d within the interval changed the choice to %+v", i, c)
		}
	}
	if c, ok := d.Next("web", cur, three, quiet, now.Add(2*time.Minute)); !ok || c.Method != events.LBRoundRobin {
		t.Fatalf("after the interval: %+v %v, want round_robin", c, ok)
	}
}
