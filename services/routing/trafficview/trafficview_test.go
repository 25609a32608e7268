package trafficview

import (
	"testing"
	"time"

	"github.com/orchestry/orchestry/pkg/events"
)

func TestViewKeepsTheNewestWindowPerApp(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	var v View
	steps := []struct {
		app  string
		at   time.Time
		kept bool
	}{
		{"web", t0, true},
		{"web", t0.Add(10 * time.Second), true},
		{"web", t0, false},                       // older, late
		{"web", t0.Add(10 * time.Second), false}, // repeated
		{"api", t0, true},
	}
	for i, s := range steps {
		if got := v.Observe(events.UpstreamMetrics{App: s.app, WindowStart: s.at, WindowSeconds: 10}); got != s.kept {
			t.Fatalf("step %d: kept = %v, want %v", i, got, s.kept)
		}
	}
	if m, ok := v.Latest("web"); !ok || !m.WindowStart.Equal(t0.Add(10*time.Second)) {
		t.Fatalf("latest web window %+v %v", m, ok)
	}
	if _, ok := v.Latest("shop"); ok {
		t.Fatal("a window for an app never seen")
	}
}
