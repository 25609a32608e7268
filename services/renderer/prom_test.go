package renderer

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/orchestry/orchestry/pkg/events"
	"github.com/orchestry/orchestry/services/renderer/apply"
)

func TestPromMetricsObserve(t *testing.T) {
	m := newPromMetrics()
	for _, r := range []apply.Result{
		{Outcome: events.OutcomeApplied, Version: 3, Render: time.Millisecond, Validate: 20 * time.Millisecond, Reload: 80 * time.Millisecond},
		{Outcome: events.OutcomeUnchanged, Version: 3, Render: time.Millisecond},
		{Outcome: events.OutcomeInvalid, Version: 3, Render: time.Millisecond, Validate: 20 * time.Millisecond},
	} {
		m.observe(r)
	}
	for _, tc := range []struct {
		outcome string
		want    float64
	}{{events.OutcomeApplied, 1}, {events.OutcomeUnchanged, 1}, {events.OutcomeInvalid, 1}, {events.OutcomeFailed, 0}} {
		if got := testutil.ToFloat64(m.cycles.WithLabelValues(tc.outcome)); got != tc.want {
			t.Errorf("cycles %s = %v, want %v", tc.outcome, got, tc.want)
		}
	}
	// Phases of the cycles that did something: 2 renders, 2 validations, 1 reload.
	if n := testutil.CollectAndCount(m.phases); n != 3 {
		t.Errorf("%d phase series, want 3", n)
	}
	if got := testutil.ToFloat64(m.version); got != 3 {
		t.Errorf("version = %v, want 3", got)
	}
}
