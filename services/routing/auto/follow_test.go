package auto

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/orchestry/orchestry/pkg/events"
	"github.com/orchestry/orchestry/pkg/events/eventstest"
	"github.com/orchestry/orchestry/services/routing/outbox"
	"github.com/orchestry/orchestry/services/routing/store"
)

func TestTrafficWindowsChangeAnAutoAppsMethodOnceTheyAgree(t *testing.T) {
	srv := eventstest.Start(t, "")
	_, js := srv.Connect(t)
	ctx := context.Background()
	if err := events.Provision(ctx, js, 1); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"web", "pinned"} {
		app := events.App{Metadata: events.Metadata{Name: name}, Spec: events.AppSpec{LBMethod: events.LBAuto}}
		if name == "pinned" {
			app.Spec.SessionAffinity = true
			app.Spec.Networking.ExternalPort = 81
		}
		if _, _, err := st.PutApp(ctx, app); err != nil {
			t.Fatal(err)
		}
		for _, in := range three {
			if _, _, err := st.PutInstance(ctx, name, in); err != nil {
				t.Fatal(err)
			}
		}
	}
	f := New(js, st, Thresholds{HighRate: 100, Windows: 3}, zerolog.New(zerolog.NewTestWriter(t)))
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- f.Run(rctx) }()
	t.Cleanup(func() { cancel(); <-done })

	get := func(name string) store.Entry {
		t.Helper()
		e, err := st.Get(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	publish := func(name string, m events.UpstreamMetrics) {
		t.Helper()
		m.App = name
		m.WindowStart = time.Now().UTC()
		if _, err := events.Publish(ctx, js, "test", events.MetricsUpstream(name), m); err != nil {
			t.Fatal(err)
		}
	}
	applied := func() {
		t.Helper()
		for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
			c, err := js.Consumer(ctx, events.StreamMetrics, Consumer)
			if err != nil {
				continue
			}
			if info, err := c.Info(ctx); err == nil && info.NumPending == 0 && info.NumAckPending == 0 {
				return
			}
		}
		t.Fatal("windows not applied within 5s")
	}
	busy := window([]int64{400, 400, 400}, []float64{10, 10, 10})
	quiet := window([]int64{10, 10, 10}, []float64{10, 10, 10})
	// The consumer exists once Run has created it.
	for end := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := js.Consumer(ctx, events.StreamMetrics, Consumer); err == nil {
			break
		} else if time.Now().After(end) {
			t.Fatal("no consumer")
		}
	}

	// Count the writes of web's record.
	w, err := st.KV().Watch(ctx, "web", jetstream.UpdatesOnly())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Stop() })
	writes := 0
	countWrites := func() int {
		for {
			select {
			case e := <-w.Updates():
				if e != nil {
					writes++
				}
			case <-time.After(200 * time.Millisecond):
				return writes
			}
		}
	}
	for i := range 20 { // noise: busy and quiet in turn
		if i%2 == 0 {
			publish("web", busy)
		} else {
			publish("web", quiet)
		}
	}
	applied()
	if e := get("web"); countWrites() != 0 || e.Record.Auto != nil {
		t.Fatalf("alternating windows wrote the record: %+v", e.Record.Auto)
	}
	for range 3 {
		publish("web", busy)
		publish("pinned", busy)
	}
	applied()
	e := get("web")
	if n := countWrites(); n != 1 || e.Record.Auto == nil || e.Record.Auto.Method != events.LBLeastConn {
		t.Fatalf("three busy windows: %d writes, choice %+v; want one write of least_conn", n, e.Record.Auto)
	}
	if s := outbox.State(e.Record, e.Revision); s.App.Spec.LBMethod != events.LBLeastConn || s.Auto == nil {
		t.Fatalf("routing.changed would carry %s, auto %+v", s.App.Spec.LBMethod, s.Auto)
	}
	if p := get("pinned"); p.Record.Auto != nil || outbox.State(p.Record, p.Revision).App.Spec.LBMethod != events.LBIPHash {
		t.Fatalf("session affinity app got a traffic choice: %+v", p.Record.Auto)
	}
	// Further busy windows write nothing.
	for range 5 {
		publish("web", busy)
	}
	applied()
	if n := countWrites(); n != 1 {
		t.Fatalf("agreeing windows wrote %d more times", n-1)
	}
	// Declaring the app again without auto drops the choice.
	if _, _, err := st.PutApp(ctx, events.App{Metadata: events.Metadata{Name: "web"}}); err != nil {
		t.Fatal(err)
	}
	if e := get("web"); e.Record.Auto != nil {
		t.Fatalf("round_robin app kept its auto choice %+v", e.Record.Auto)
	}
}
