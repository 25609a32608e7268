package health

import (
	"fmt"
	"testing"
	"time"

	"github.com/orchestry/orchestry/pkg/events"
	"github.com/orchestry/orchestry/pkg/events/eventstest"
)

func TestReplicasShareTargets(t *testing.T) {
	srv := eventstest.Start(t, "")
	nc, _ := srv.Connect(t)
	seen := collect(t, nc)

	const n = 12
	backends := make([]*backend, n)
	instances := make([]events.Instance, n)
	for i := range n {
		backends[i] = newBackend(t)
		instances[i] = events.Instance{ID: fmt.Sprintf("i%d", i), IP: "127.0.0.1", Port: backends[i].port(t)}
	}
	// "c" is started as a crash-only replica: it stops without leaving.
	reps := map[string]*running{
		"a": start(t, nc, "a", false),
		"b": start(t, nc, "b", false),
		"c": start(t, nc, "c", true),
	}
	for name, r := range reps {
		waitFor(t, 10*time.Second, name+" sees all three", func() bool {
			return len(r.svc.Members()) == 3
		})
	}
	publishRouting(t, nc, events.RoutingState{
		App:       events.App{Metadata: events.Metadata{Name: "web"}, HealthCheck: fastCheck()},
		Instances: instances,
		Revision:  1,
	})
	for _, in := range instances {
		waitFor(t, 10*time.Second, in.ID+" healthy", func() bool {
			st, ok := seen.last(in.ID)
			return ok && st.State == events.HealthHealthy
		})
	}

	// In a steady window every target is probed, each by exactly one replica.
	owners := map[int]string{}
	for _, b := range backends {
		b.take()
	}
	time.Sleep(time.Second)
	byReplica := map[string]int{}
	for i, b := range backends {
		hits := b.take()
		if len(hits) != 1 {
			t.Fatalf("target %d probed by %v, want exactly one replica", i, hits)
		}
		for r := range hits {
			owners[i] = r
			byReplica[r]++
		}
	}
	t.Logf("targets per replica: %v", byReplica)
	if byReplica["c"] == 0 {
		t.Fatal("replica c owns no target; the crash below would prove nothing")
	}

	// c crashes (no leave): within lease + a period its targets move to
	// the survivors, and c probes nothing any more.
	reps["c"].stop()
	for _, b := range backends {
		b.take()
	}
	waitFor(t, 10*time.Second, "every target probed by survivors", func() bool {
		for _, b := range backends {
			if b.total() == 0 {
				return false
			}
		}
		return true
	})
	for _, b := range backends {
		b.take()
	}
	time.Sleep(time.Second)
	for i, b := range backends {
		hits := b.take()
		if len(hits) != 1 || hits["c"] != 0 {
			t.Fatalf("after the crash target %d probed by %v, want exactly one survivor", i, hits)
		}
		for r := range hits {
			if owners[i] != "c" && owners[i] != r {
				t.Errorf("target %d moved from %s to %s though its owner lives", i, owners[i], r)
			}
		}
	}

	// No target got a duplicate transition: one healthy event each.
	for _, in := range instances {
		if evs := seen.of(in.ID); len(evs) != 1 {
			t.Errorf("%s: %d events, want 1: %+v", in.ID, len(evs), evs)
		}
	}
}
