package model

import (
	"testing"

	"github.com/orchestry/orchestry/pkg/events"
)

func state(app string, rev uint64, ids ...string) events.RoutingState {
	s := events.RoutingState{App: events.App{Metadata: events.Metadata{Name: app}}, Revision: rev}
	for i, id := range ids {
		s.Instances = append(s.Instances, events.Instance{ID: id, IP: "10.0.0.1", Port: 8000 + i})
	}
	return s
}

func ids(s events.RoutingState) []string {
	var out []string
	for _, in := range s.Instances {
		out = append(out, in.ID)
	}
	return out
}

func TestModelFollowsRevisionsAndHealth(t *testing.T) {
	m := New(false)
	steps := []struct {
		name    string
		apply   func() bool
		changed bool
		want    map[string][]string
	}{
		{"first state", func() bool { return m.ApplyRouting(state("web", 2, "a", "b", "c")) }, true, map[string][]string{"web": {"a", "b", "c"}}},
		{"older revision ignored", func() bool { return m.ApplyRouting(state("web", 1, "a")) }, false, map[string][]string{"web": {"a", "b", "c"}}},
		{"repeat ignored", func() bool { return m.ApplyRouting(state("web", 2, "a")) }, false, map[string][]string{"web": {"a", "b", "c"}}},
		{"unhealthy leaves rotation", func() bool {
			return m.ApplyHealth(events.HealthState{App: "web", InstanceID: "b", State: events.HealthUnhealthy, Revision: 1})
		}, true, map[string][]string{"web": {"a", "c"}}},
		{"older health ignored", func() bool {
			return m.ApplyHealth(events.HealthState{App: "web", InstanceID: "b", State: events.HealthHealthy, Revision: 1})
		}, false, map[string][]string{"web": {"a", "c"}}},
		{"healthy again", func() bool {
			return m.ApplyHealth(events.HealthState{App: "web", InstanceID: "b", State: events.HealthHealthy, Revision: 2})
		}, true, map[string][]string{"web": {"a", "b", "c"}}},
		{"second app", func() bool { return m.ApplyRouting(state("api", 5, "x")) }, true, map[string][]string{"web": {"a", "b", "c"}, "api": {"x"}}},
		{"delete", func() bool {
			return m.ApplyRouting(events.RoutingState{App: events.App{Metadata: events.Metadata{Name: "web"}}, Deleted: true, Revision: 3})
		}, true, map[string][]string{"api": {"x"}}},
	}
	for _, st := range steps {
		if got := st.apply(); got != st.changed {
			t.Fatalf("%s: changed = %v, want %v", st.name, got, st.changed)
		}
		snap := m.Snapshot()
		if len(snap) != len(st.want) {
			t.Fatalf("%s: %d apps, want %d", st.name, len(snap), len(st.want))
		}
		for _, s := range snap {
			got, want := ids(s), st.want[s.App.Metadata.Name]
			if len(got) != len(want) {
				t.Fatalf("%s: %s serves %v, want %v", st.name, s.App.Metadata.Name, got, want)
			}
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("%s: %s serves %v, want %v", st.name, s.App.Metadata.Name, got, want)
				}
			}
		}
	}
}

func TestHoldUnprobedServesOnlyReportedHealthyInstances(t *testing.T) {
	m := New(true)
	m.ApplyRouting(state("web", 1, "a", "b"))
	if got := m.Snapshot()[0].Instances; len(got) != 0 {
		t.Fatalf("unprobed instances served: %v", got)
	}
	m.ApplyHealth(events.HealthState{App: "web", InstanceID: "b", State: events.HealthHealthy, Revision: 1})
	if got := ids(m.Snapshot()[0]); len(got) != 1 || got[0] != "b" {
		t.Fatalf("serves %v, want [b]", got)
	}
}
