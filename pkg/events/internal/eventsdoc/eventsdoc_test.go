package eventsdoc_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/orchestry/orchestry/pkg/events"
	"github.com/orchestry/orchestry/pkg/events/eventstest"
	"github.com/orchestry/orchestry/pkg/events/internal/eventsdoc"
)

// catalogueFile is docs/events.md, from this package's directory.
var catalogueFile = filepath.Join("..", "..", "..", "..", "docs", "events.md")

// TestCatalogueIsGenerated fails when docs/events.md is not what the
// generator writes from pkg/events now.
func TestCatalogueIsGenerated(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("..", "..", "example_test.go"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := eventsdoc.Markdown(src)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(catalogueFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("docs/events.md is out of date: run go generate ./pkg/events")
	}
}

// TestExamplesDecode checks that every example in the catalogue is an
// event its consumers accept: events.Decode passes it, as the type the
// catalogue shows it under.
func TestExamplesDecode(t *testing.T) {
	ex, err := eventsdoc.Examples()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range events.Catalogue() {
		e, ok := ex[f.Type]
		if !ok {
			t.Errorf("no example of %s", f.Type)
			continue
		}
		raw, err := json.Marshal(e.Envelope)
		if err != nil {
			t.Fatal(err)
		}
		ev, err := events.Decode(e.Subject, raw)
		if err != nil {
			t.Errorf("%s: %v", e.Subject, err)
			continue
		}
		if ev.Envelope.Type != f.Type {
			t.Errorf("%s: decoded as %s", e.Subject, ev.Envelope.Type)
		}
	}
	if len(ex) != len(events.Catalogue()) {
		t.Errorf("%d examples for %d families", len(ex), len(events.Catalogue()))
	}
}

// TestPublishersAndConsumersOnAServer publishes each example as each of
// its family's publishers, under their own NATS users, and reads it back
// as each consumer: the catalogue's publishers and consumers can do what
// it says they do.
func TestPublishersAndConsumersOnAServer(t *testing.T) {
	srv := eventstest.StartSecured(t, "")
	srv.Connect(t) // provisions every stream and bucket
	ex, err := eventsdoc.Examples()
	if err != nil {
		t.Fatal(err)
	}
	js := map[string]jetstream.JetStream{}
	for _, id := range events.Services() {
		j, err := jetstream.New(srv.ConnectAs(t, id))
		if err != nil {
			t.Fatal(err)
		}
		js[id] = j
	}
	for _, f := range events.Catalogue() {
		e := ex[f.Type]
		for _, pub := range f.Publishers {
			env := e.Envelope
			env.ID += "-" + pub // a fresh id each, or JetStream drops the repeats
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			ack, err := events.PublishEnvelope(ctx, js[pub], e.Subject, env)
			cancel()
			if err != nil {
				t.Errorf("%s publishing %s: %v", pub, e.Subject, err)
				continue
			}
			if ack.Stream != f.Stream {
				t.Errorf("%s stored in %s, catalogue says %s", e.Subject, ack.Stream, f.Stream)
			}
		}
		for _, c := range f.Consumers {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			cons, err := js[c.Service].OrderedConsumer(ctx, f.Stream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{f.Subject}})
			if err != nil {
				cancel()
				t.Errorf("%s consuming %s: %v", c.Service, f.Subject, err)
				continue
			}
			msg, err := cons.Next(jetstream.FetchMaxWait(3 * time.Second))
			cancel()
			if err != nil {
				t.Errorf("%s reading %s: %v", c.Service, f.Subject, err)
				continue
			}
			if _, err := events.Decode(msg.Subject(), msg.Data()); err != nil {
				t.Errorf("%s read %s: %v", c.Service, msg.Subject(), err)
			}
		}
	}
}

// TestCLIExampleOnAServer does what the guide's nats pub does: it
// publishes the example registration's JSON on core NATS as the user
// client, with its id as Nats-Msg-Id, twice. The INSTANCES stream stores it
// once, and it decodes.
func TestCLIExampleOnAServer(t *testing.T) {
	srv := eventstest.StartSecured(t, "")
	_, admin := srv.Connect(t)
	ex, err := eventsdoc.Examples()
	if err != nil {
		t.Fatal(err)
	}
	e := ex["io.orchestry.instance.registered.v1"]
	raw, err := json.Marshal(e.Envelope)
	if err != nil {
		t.Fatal(err)
	}
	nc := srv.ConnectAs(t, events.ServiceClient)
	for range 2 {
		msg := nats.NewMsg(e.Subject)
		msg.Header.Set(nats.MsgIdHdr, e.Envelope.ID)
		msg.Data = raw
		if err := nc.PublishMsg(msg); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := admin.Stream(ctx, events.StreamInstances)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Second)
	var stored *jetstream.RawStreamMsg
	for stored == nil && time.Now().Before(deadline) {
		stored, _ = st.GetLastMsgForSubject(ctx, e.Subject)
		time.Sleep(20 * time.Millisecond)
	}
	if stored == nil {
		t.Fatal("the INSTANCES stream did not store the registration")
	}
	if _, err := events.Decode(stored.Subject, stored.Data); err != nil {
		t.Error(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 {
		t.Errorf("stored %d messages, want 1 (Nats-Msg-Id de-duplicates)", info.State.Msgs)
	}
}
