package health

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestProbesCounted(t *testing.T) {
	m := newPromMetrics()
	m.probed(true, 3*time.Millisecond)
	m.probed(false, 2*time.Second)
	m.probed(true, time.Millisecond)
	if got := testutil.ToFloat64(m.probes.WithLabelValues("pass")); got != 2 {
		t.Errorf("pass = %v, want 2", got)
	}
	if got := testutil.ToFloat64(m.probes.WithLabelValues("fail")); got != 1 {
		t.Errorf("fail = %v, want 1", got)
	}
}
