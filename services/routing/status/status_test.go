package status

import (
	"maps"
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

func TestServedRevisionsAccumulatePerNode(t *testing.T) {
	served := func(pairs ...any) []events.ServedChange {
		var out []events.ServedChange
		for i := 0; i < len(pairs); i += 2 {
			out = append(out, events.ServedChange{App: pairs[i].(string), Revision: uint64(pairs[i+1].(int))})
		}
		return out
	}
	var tr Tracker
	now := time.Now()
	for _, r := range []events.RenderReport{
		{Node: "a", Revision: 1, Served: served("web", 3, "api", 4)},
		{Node: "a", Revision: 2, Served: served("web", 7)},
		{Node: "a", Revision: 3},                                // nothing new served
		{Node: "a", Revision: 2, Served: served("web", 5)},      // older report: web stays 7
		{Node: "a", Revision: 4, Served: served("gone", 9)},     // a deleted app
		{Node: "b", Revision: 1, Served: served("web", 3)},      // another node
		{Node: "b", Revision: 1, Served: served("shop", 8)},     // repeated report, still counts
		{Node: "c", Revision: 1, Outcome: events.OutcomeFailed}, // never served anything
	} {
		tr.Observe(r, now)
	}
	want := map[string]map[string]uint64{
		"a": {"web": 7, "api": 4, "gone": 9},
		"b": {"web": 3, "shop": 8},
		"c": {},
	}
	nodes := tr.Nodes()
	if len(nodes) != len(want) {
		t.Fatalf("%d nodes", len(nodes))
	}
	for _, n := range nodes {
		if !maps.Equal(n.ServedRevisions, want[n.Node]) {
			t.Errorf("%s: served %v, want %v", n.Node, n.ServedRevisions, want[n.Node])
		}
	}
	if nodes[0].Revision != 4 {
		t.Errorf("a: last report %d, want 4", nodes[0].Revision)
	}
	// The copy handed out is the caller's own.
	nodes[0].ServedRevisions["web"] = 1
	if tr.Nodes()[0].ServedRevisions["web"] != 7 {
		t.Error("Nodes shares its map with the tracker")
	}
}
