package feed_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/orchestry/orchestry/pkg/events"
	"github.com/orchestry/orchestry/pkg/events/eventstest"
	"github.com/orchestry/orchestry/services/routing/feed"
)

func publish(t *testing.T, js jetstream.JetStream, subject string, p events.Payload) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := events.Publish(ctx, js, "test", subject, p); err != nil {
		t.Fatalf("publish %s: %v", subject, err)
	}
}

func subjects(rs []feed.EventRecord) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Subject
	}
	return out
}

// The feed replays the recent past of every stream, sorted by time, then
// follows new events; it runs under routing's own NATS identity.
func TestRunReplaysThenFollowsUnderRoutingsPermissions(t *testing.T) {
	srv := eventstest.StartSecured(t, "")
	_, admin := srv.Connect(t)
	now := time.Now().UTC()
	// Before the feed starts, on three streams.
	publish(t, admin, events.InstanceHealth("web"), events.HealthState{App: "web", InstanceID: "w1", State: events.HealthHealthy, Since: now, Revision: 1})
	publish(t, admin, events.ConfigRendered("n1"), events.RenderReport{Node: "n1", Version: 1, Attempted: 1, Hash: "h", Outcome: events.OutcomeApplied, Revision: 1})
	publish(t, admin, events.InstanceDeregistered("web"), events.InstanceRemoval{ID: "w1"})
	// A malformed event is left out.
	if _, err := admin.Publish(context.Background(), events.MetricsUpstream("web"), []byte(`{"nope":1}`)); err != nil {
		t.Fatal(err)
	}

	nc := srv.ConnectAs(t, events.ServiceRouting)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	f := feed.New(feed.Options{Replay: time.Minute})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx, js, zerolog.New(zerolog.NewTestWriter(t))) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	waitFor := func(n int) []feed.EventRecord {
		t.Helper()
		for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
			if got := f.Recent(feed.Filter{}, 0, 0); len(got) >= n {
				return got
			}
		}
		t.Fatalf("feed holds %v, want %d records", subjects(f.Recent(feed.Filter{}, 0, 0)), n)
		return nil
	}
	replayed := []string{"instance.health.web", "config.rendered.n1", "instance.deregistered.web"}
	if got := waitFor(3); !slices.Equal(subjects(got), replayed) {
		t.Errorf("replayed %v, want %v (publish order)", subjects(got), replayed)
	}

	_, sub := f.Subscribe(feed.Filter{App: "web"}, f.Last())
	defer f.Unsubscribe(sub)
	publish(t, admin, events.RoutingChanged("web"), events.RoutingState{App: events.App{Metadata: events.Metadata{Name: "web"}}, Deleted: true, Revision: 9})
	publish(t, admin, events.CertFailed("a.example.com"), events.CertFailure{Domain: "a.example.com", Reason: "dns", NextAttempt: now})
	publish(t, admin, events.Rejected("instance.registered.web"), events.Rejection{Subject: "instance.registered.web", Reason: "bad", By: "routing"})
	// Live records enter as they arrive: in order within a stream, in any
	// order across streams.
	got := waitFor(6)
	live := subjects(got[3:])
	slices.Sort(live)
	if !slices.Equal(live, []string{"cert.failed.a.example.com", "rejected.instance.registered.web", "routing.changed.web"}) {
		t.Errorf("live %v", live)
	}
	var mine []string
	for range 2 {
		select {
		case r := <-sub.C():
			if r.App != "web" {
				t.Errorf("subscriber to app web got %s (app %q)", r.Subject, r.App)
			}
			mine = append(mine, r.Subject)
		case <-time.After(5 * time.Second):
			t.Fatalf("subscriber got only %v", mine)
		}
	}
	slices.Sort(mine)
	if !slices.Equal(mine, []string{"rejected.instance.registered.web", "routing.changed.web"}) {
		t.Errorf("subscriber got %v", mine)
	}
}
