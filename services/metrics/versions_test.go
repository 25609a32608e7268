package metrics

import (
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestServingVersions(t *testing.T) {
	sv := newServingVersions()
	for _, v := range []uint64{3, 5, 4, 0} { // never moves back; 0 says nothing
		sv.observe("edge-1", v)
	}
	if got := sv.nodes["edge-1"].Load(); got != 5 {
		t.Errorf("edge-1 = %d, want 5", got)
	}
	// Forged node names cannot grow it without bound.
	for i := range 2 * maxNodes {
		sv.observe(fmt.Sprintf("n%d", i), 1)
	}
	if n := testutil.CollectAndCount(sv); n != maxNodes {
		t.Errorf("%d series, want at most %d", n, maxNodes)
	}
}
