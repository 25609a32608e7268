package outbox_test

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/orchestry/orchestry/pkg/events"
	"github.com/orchestry/orchestry/pkg/events/eventstest"
	"github.com/orchestry/orchestry/services/routing/outbox"
	"github.com/orchestry/orchestry/services/routing/store"
)

// Publishing the same KV revision twice (two replicas, or a restart) stores
// one routing.changed message: the envelope id depends on (app, revision).
func TestSameRevisionIsDeduplicated(t *testing.T) {
	_, js := eventstest.Start(t, "").Connect(t)
	ctx := context.Background()
	st, err := store.Open(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	app := events.App{Metadata: events.Metadata{Name: "shop"}}
	if _, _, err := st.PutApp(ctx, app); err != nil {
		t.Fatal(err)
	}
	for round, wantDup := range []bool{false, true} {
		entry, err := st.KV().Get(ctx, "shop")
		if err != nil {
			t.Fatal(err)
		}
		env, err := outbox.Envelope(events.KVUpdate{Key: entry.Key(), Revision: entry.Revision(), Value: entry.Value()})
		if err != nil {
			t.Fatal(err)
		}
		if env.ID != "routing-shop-1" {
			t.Errorf("id %q", env.ID)
		}
		ack, err := events.PublishEnvelope(ctx, js, events.RoutingChanged("shop"), env)
		if err != nil {
			t.Fatal(err)
		}
		if ack.Duplicate != wantDup {
			t.Errorf("round %d: duplicate = %v, want %v", round, ack.Duplicate, wantDup)
		}
	}
	ev := decodeLast(t, ctx, js)
	st0 := ev.Payload.(events.RoutingState)
	if st0.Revision != 1 || st0.App.Spec.LBMethod != events.LBRoundRobin || st0.App.Spec.Networking.ExternalPort != 80 || len(st0.Instances) != 0 {
		t.Errorf("state %+v", st0)
	}
}

// decodeLast decodes the last routing.changed.shop message in the stream.
func decodeLast(t *testing.T, ctx context.Context, js jetstream.JetStream) events.Event {
	t.Helper()
	s, err := js.Stream(ctx, events.StreamRouting)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := s.GetLastMsgForSubject(ctx, events.RoutingChanged("shop"))
	if err != nil {
		t.Fatal(err)
	}
	if msg.Sequence != 1 {
		t.Errorf("stream holds %d messages, want 1", msg.Sequence)
	}
	ev, err := events.Decode(msg.Subject, msg.Data)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}
