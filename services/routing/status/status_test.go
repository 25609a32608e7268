package status

import (
	"testing"
	"time"

	"github.com/orchestry/orchestry/pkg/events"
)

func TestObserveKeepsNewestPerNode(t *testing.T) {
	var tr Tracker
	now := time.Now()
	steps := []struct {
		node string
		rev  uint64
		kept bool
	}{
		{"b", 2, true}, {"a", 5, true}, {"a", 4, false}, {"a", 5, false}, {"a", 6, true}, {"b", 1, false},
	}
	for i, s := range steps {
		r := events.RenderReport{Node: s.node, Revision: s.rev, Version: s.rev, Outcome: events.OutcomeApplied}
		if got := tr.Observe(r, now); got != s.kept {
			t.Errorf("step %d (%s rev %d): kept = %v, want %v", i, s.node, s.rev, got, s.kept)
		}
	}
	nodes := tr.Nodes()
	if len(nodes) != 2 || nodes[0].Node != "a" || nodes[0].Revision != 6 || nodes[1].Node != "b" || nodes[1].Revision != 2 {
		t.Errorf("nodes %+v", nodes)
	}
}
