package health

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/orchestry/orchestry/pkg/events"
	"github.com/orchestry/orchestry/pkg/events/eventstest"
)

func jetstreamNew(nc *nats.Conn) (jetstream.JetStream, error) { return jetstream.New(nc) }

func TestServiceTransitionsAndRestart(t *testing.T) {
	srv := eventstest.Start(t, "")
	nc, js := srv.Connect(t)
	events1 := collect(t, nc)
	b1, b2 := newBackend(t), newBackend(t)

	r1 := start(t, nc, "one", false)
	publishRouting(t, nc, events.RoutingState{
		App: events.App{Metadata: events.Metadata{Name: "web"}, HealthCheck: fastCheck()},
		Instances: []events.Instance{
			{ID: "i1", IP: "127.0.0.1", Port: b1.port(t)},
			{ID: "i2", IP: "127.0.0.1", Port: b2.port(t)},
		},
		Revision: 1,
	})

	// Initial unhealthy -> healthy after the first passing probe.
	for _, id := range []string{"i1", "i2"} {
		waitFor(t, 10*time.Second, id+" healthy", func() bool {
			st, ok := events1.last(id)
			return ok && st.State == events.HealthHealthy
		})
		if evs := events1.of(id); len(evs) != 1 {
			t.Fatalf("%s: %d events before healthy, want 1: %+v", id, len(evs), evs)
		}
	}

	// One backend dies: exactly one unhealthy transition for it.
	b2.srv.Close()
	waitFor(t, 10*time.Second, "i2 unhealthy", func() bool {
		st, _ := events1.last("i2")
		return st.State == events.HealthUnhealthy
	})
	time.Sleep(time.Second) // five more periods: no repeat
	evs := events1.of("i2")
	if len(evs) != 2 || evs[1].State != events.HealthUnhealthy || evs[1].ConsecutiveFailures != 2 || evs[1].LastError == "" {
		t.Fatalf("i2 events = %+v, want healthy then one unhealthy after 2 failures", evs)
	}
	if n := len(events1.of("i1")); n != 1 {
		t.Fatalf("i1 has %d events, want 1", n)
	}

	// KV holds the state, its revision is the entry's.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, events.BucketHealth)
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(ctx, events.HealthKey("web", "i2"))
	if err != nil {
		t.Fatal(err)
	}
	var stored events.HealthState
	if err := json.Unmarshal(e.Value(), &stored); err != nil {
		t.Fatal(err)
	}
	if stored.State != events.HealthUnhealthy || evs[1].Revision != e.Revision() {
		t.Fatalf("stored %+v at revision %d; event revision %d", stored, e.Revision(), evs[1].Revision)
	}

	// Restart: the new process starts from the stored truth and publishes
	// nothing for unchanged states.
	r1.stop()
	before := events1.count()
	b1.take()
	start(t, nc, "two", false)
	waitFor(t, 10*time.Second, "probes after restart", func() bool { return b1.total() >= 5 })
	time.Sleep(500 * time.Millisecond)
	if n := events1.count(); n != before {
		t.Fatalf("restart published %d events for unchanged states: %+v", n-before, events1.all[before:])
	}

	// Removing an instance stops its probes and deletes its state.
	publishRouting(t, nc, events.RoutingState{
		App:       events.App{Metadata: events.Metadata{Name: "web"}, HealthCheck: fastCheck()},
		Instances: []events.Instance{{ID: "i1", IP: "127.0.0.1", Port: b1.port(t)}},
		Revision:  2,
	})
	waitFor(t, 10*time.Second, "i2 state deleted", func() bool {
		_, err := kv.Get(ctx, events.HealthKey("web", "i2"))
		return err == jetstream.ErrKeyNotFound
	})
	if _, err := kv.Get(ctx, events.HealthKey("web", "i1")); err != nil {
		t.Fatalf("i1 state: %v", err)
	}
}
