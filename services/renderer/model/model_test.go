package model

import (
	"testing"
	"time"

	"github.com/orchestry/orchestry/pkg/events"
)

func state(app string, rev uint64, ids ...string) events.RoutingState {
	s := events.RoutingState{App: events.App{Metadata: events.Metadata{Name: app}}, Revision: rev}
	for i, id := range ids {
		s.Instances = append(s.Instances, events.Instance{ID: id, IP: "10.0.0.1", Port: 8000 + i})
	}
	return s
}

var t0 = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

func ids(s events.RoutingState) []string {
	var out []string
	for _, in := range s.Instances {
		out = append(out, in.ID)
	}
	return out
}

func TestModelFollowsRevisionsAndHealth(t *testing.T) {
	m := New(Policy{})
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
			return m.ApplyHealth(events.HealthState{App: "web", InstanceID: "b", State: events.HealthUnhealthy, Revision: 1}, t0)
		}, true, map[string][]string{"web": {"a", "c"}}},
		{"older health ignored", func() bool {
			return m.ApplyHealth(events.HealthState{App: "web", InstanceID: "b", State: events.HealthHealthy, Revision: 1}, t0)
		}, false, map[string][]string{"web": {"a", "c"}}},
		{"healthy again", func() bool {
			return m.ApplyHealth(events.HealthState{App: "web", InstanceID: "b", State: events.HealthHealthy, Revision: 2}, t0)
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
		snap, _ := m.Snapshot(t0)
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
	m := New(Policy{HoldUnprobed: true})
	m.ApplyRouting(state("web", 1, "a", "b"))
	if snap, _ := m.Snapshot(t0); len(snap[0].Instances) != 0 {
		got := snap[0].Instances
		t.Fatalf("unprobed instances served: %v", got)
	}
	m.ApplyHealth(events.HealthState{App: "web", InstanceID: "b", State: events.HealthHealthy, Revision: 1}, t0)
	snap, _ := m.Snapshot(t0)
	if got := ids(snap[0]); len(got) != 1 || got[0] != "b" {
		t.Fatalf("serves %v, want [b]", got)
	}
}

// weights is id -> rendered weight (0 for an unset weight), with a "+b"
// suffix on backups.
func weights(s events.RoutingState) map[string]int {
	out := map[string]int{}
	for _, in := range s.Instances {
		id := in.ID
		if in.Backup {
			id += "+b"
		}
		out[id] = in.Weight
	}
	return out
}

func TestSlowStartStepsTheWeightOfARecoveredInstance(t *testing.T) {
	const window = 40 * time.Second
	m := New(Policy{SlowStart: window})
	m.ApplyRouting(state("web", 1, "a", "b", "c"))
	for i, id := range []string{"a", "b", "c"} {
		m.ApplyHealth(events.HealthState{App: "web", InstanceID: id, State: events.HealthHealthy, Since: t0.Add(-time.Hour), Revision: uint64(i + 1)}, t0)
	}
	if snap, next := m.Snapshot(t0); !next.IsZero() || weights(snap[0])["c"] != 0 {
		t.Fatalf("first healthy report ramps: %v next %v", weights(snap[0]), next)
	}
	// A new instance goes from its initial unhealthy state to healthy:
	// not a recovery.
	m.ApplyRouting(state("web", 2, "a", "b", "c", "d"))
	m.ApplyHealth(events.HealthState{App: "web", InstanceID: "d", State: events.HealthUnhealthy, Since: t0, Revision: 1}, t0)
	m.ApplyHealth(events.HealthState{App: "web", InstanceID: "d", State: events.HealthHealthy, Since: t0, Revision: 2}, t0)
	if snap, next := m.Snapshot(t0); !next.IsZero() || weights(snap[0])["d"] != 0 {
		t.Fatalf("a new instance ramps: %v next %v", weights(snap[0]), next)
	}
	m.ApplyRouting(state("web", 3, "a", "b", "c"))
	m.ApplyHealth(events.HealthState{App: "web", InstanceID: "c", State: events.HealthUnhealthy, Since: t0, Revision: 10}, t0)
	recovered := t0.Add(time.Minute)
	m.ApplyHealth(events.HealthState{App: "web", InstanceID: "c", State: events.HealthHealthy, Since: recovered, Revision: 11}, recovered)
	for _, tc := range []struct {
		at       time.Duration
		c        int
		others   int
		nextStep time.Duration // 0: no step pending
	}{
		{0, 1, 5, 10 * time.Second},
		{9 * time.Second, 1, 5, 10 * time.Second},
		{10 * time.Second, 2, 5, 20 * time.Second},
		{25 * time.Second, 3, 5, 30 * time.Second},
		{39 * time.Second, 4, 5, 40 * time.Second},
		{40 * time.Second, 0, 0, 0},
	} {
		snap, next := m.Snapshot(recovered.Add(tc.at))
		w := weights(snap[0])
		if w["c"] != tc.c || w["a"] != tc.others || w["b"] != tc.others {
			t.Errorf("at +%s: weights %v, want c=%d others=%d", tc.at, w, tc.c, tc.others)
		}
		want := time.Time{}
		if tc.nextStep > 0 {
			want = recovered.Add(tc.nextStep)
		}
		if !next.Equal(want) {
			t.Errorf("at +%s: next step %v, want %v", tc.at, next, want)
		}
	}
}

func TestSlowStartKeepsWeightsWithinTheAcceptedRange(t *testing.T) {
	m := New(Policy{SlowStart: time.Minute})
	s := state("web", 1, "a", "b")
	s.Instances[0].Weight = 900
	s.Instances[1].Weight = 300
	m.ApplyRouting(s)
	m.ApplyHealth(events.HealthState{App: "web", InstanceID: "b", State: events.HealthHealthy, Revision: 1}, t0)
	m.ApplyHealth(events.HealthState{App: "web", InstanceID: "b", State: events.HealthEjected, Revision: 2}, t0)
	m.ApplyHealth(events.HealthState{App: "web", InstanceID: "b", State: events.HealthHealthy, Since: t0, Revision: 3}, t0)
	snap, _ := m.Snapshot(t0.Add(30 * time.Second))
	if w := weights(snap[0]); w["a"] != 900 || w["b"] != 180 {
		t.Fatalf("weights %v, want a=900 (unscaled, 900*2 > 1000) b=300*3/5", w)
	}
}

func TestSlowStartNeedsAnInstanceAtFullWeight(t *testing.T) {
	m := New(Policy{SlowStart: time.Minute})
	m.ApplyRouting(state("web", 1, "a"))
	m.ApplyHealth(events.HealthState{App: "web", InstanceID: "a", State: events.HealthHealthy, Revision: 1}, t0)
	m.ApplyHealth(events.HealthState{App: "web", InstanceID: "a", State: events.HealthUnhealthy, Revision: 2}, t0)
	m.ApplyHealth(events.HealthState{App: "web", InstanceID: "a", State: events.HealthHealthy, Since: t0, Revision: 3}, t0)
	if snap, next := m.Snapshot(t0); weights(snap[0])["a"] != 0 || !next.IsZero() {
		t.Fatalf("a lone instance ramps: %v, next %v", weights(snap[0]), next)
	}
}

func TestPanicFloorServesEjectedInstancesAsBackups(t *testing.T) {
	for _, tc := range []struct {
		name   string
		panic  int
		states map[string]string
		want   []string
	}{
		{"one of four ejected", 50, map[string]string{"a": "healthy", "b": "healthy", "c": "healthy", "d": "ejected"}, []string{"a", "b", "c"}},
		{"two of four ejected: at the floor", 50, map[string]string{"a": "healthy", "b": "healthy", "c": "ejected", "d": "ejected"}, []string{"a", "b"}},
		{"three of four ejected", 50, map[string]string{"a": "healthy", "b": "ejected", "c": "ejected", "d": "ejected"}, []string{"a", "b+b", "c+b", "d+b"}},
		{"unhealthy never served", 50, map[string]string{"a": "healthy", "b": "unhealthy", "c": "unhealthy", "d": "ejected"}, []string{"a", "d+b"}},
		{"none healthy: ejected only", 50, map[string]string{"a": "ejected", "b": "unhealthy", "c": "unhealthy", "d": "unhealthy"}, []string{"a+b"}},
		{"panic off", 0, map[string]string{"a": "healthy", "b": "ejected", "c": "ejected", "d": "ejected"}, []string{"a"}},
		{"all unhealthy", 50, map[string]string{"a": "unhealthy", "b": "unhealthy", "c": "unhealthy", "d": "draining"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := New(Policy{PanicPercent: tc.panic})
			m.ApplyRouting(state("web", 1, "a", "b", "c", "d"))
			rev := uint64(0)
			for id, st := range tc.states {
				rev++
				m.ApplyHealth(events.HealthState{App: "web", InstanceID: id, State: st, Revision: rev}, t0)
			}
			snap, _ := m.Snapshot(t0)
			got := weights(snap[0])
			if len(got) != len(tc.want) {
				t.Fatalf("serves %v, want %v", got, tc.want)
			}
			for _, id := range tc.want {
				if _, ok := got[id]; !ok {
					t.Fatalf("serves %v, want %v", got, tc.want)
				}
			}
		})
	}
}

func TestDrainingInstancesGetNoTraffic(t *testing.T) {
	m := New(Policy{PanicPercent: 50})
	s := state("web", 1, "a", "b")
	s.Instances[1].Draining = true
	m.ApplyRouting(s)
	for i, id := range []string{"a", "b"} {
		m.ApplyHealth(events.HealthState{App: "web", InstanceID: id, State: events.HealthHealthy, Revision: uint64(i + 1)}, t0)
	}
	snap, _ := m.Snapshot(t0)
	if got := ids(snap[0]); len(got) != 1 || got[0] != "a" {
		t.Fatalf("serves %v, want [a]: b is draining", got)
	}
}

func TestModelReportsServedChanges(t *testing.T) {
	m := New(Policy{})
	m.ApplyRouting(state("old", 1, "a")) // replayed: no publish time, reported served but not timed
	m.ApplyRouting(state("web", 2, "a"))
	m.ApplyRoutingChange(state("web", 3, "a"), t0)
	m.ApplyRoutingChange(state("web", 4, "a", "b"), t0.Add(time.Second))
	m.ApplyRoutingChange(state("tls", 9, "a"), t0.Add(2*time.Second))
	upTo := m.Unserved()
	if len(upTo) != 3 || upTo["web"] != 4 || upTo["tls"] != 9 || upTo["old"] != 1 {
		t.Fatalf("Unserved = %v, want old 1, web 4 and tls 9", upTo)
	}
	// A change arriving between the snapshot and the confirmation waits
	// for the next config.
	m.ApplyRoutingChange(state("web", 5, "a"), t0.Add(3*time.Second))
	got := m.MarkServed(upTo, map[string]bool{"tls": true})
	// web's replayed revision 2 is not timed: its time is revision 3's.
	want := []events.ServedChange{{App: "old", Revision: 1}, {App: "web", Revision: 4, ChangedAt: t0}}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("MarkServed = %+v, want %+v (tls left out)", got, want)
	}
	got = m.MarkServed(m.Unserved(), nil)
	if len(got) != 2 || got[0] != (events.ServedChange{App: "tls", Revision: 9, ChangedAt: t0.Add(2 * time.Second)}) ||
		got[1] != (events.ServedChange{App: "web", Revision: 5, ChangedAt: t0.Add(3 * time.Second)}) {
		t.Fatalf("second MarkServed = %+v", got)
	}
	if u := m.Unserved(); len(u) != 0 {
		t.Fatalf("Unserved after serving everything = %v", u)
	}
	// The oldest change survives a long burst.
	for i := range uint64(maxUnserved + 10) {
		m.ApplyRoutingChange(state("web", 10+i, "a"), t0.Add(time.Duration(i)*time.Second))
	}
	got = m.MarkServed(m.Unserved(), nil)
	if len(got) != 1 || got[0].ChangedAt != t0 || got[0].Revision != 10+maxUnserved+9 {
		t.Fatalf("after a burst MarkServed = %+v, want the oldest time and the newest revision", got)
	}
}
