package events_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/orchestry/orchestry/pkg/events"
	"github.com/orchestry/orchestry/pkg/events/eventstest"
)

func sampleState() events.RoutingState {
	return events.RoutingState{
		App: events.App{
			Metadata: events.Metadata{Name: "web", Labels: map[string]string{"team": "edge"}},
			Spec: events.AppSpec{
				Networking: events.Networking{ExternalPort: 8080, Domain: "web.example.com", MaxBodySize: "10m", Timeout: 30,
					Headers: map[string]string{"X-Frame-Options": "DENY"}},
				LBMethod: events.LBLeastConn,
			},
		},
		Instances: []events.Instance{{ID: "a", IP: "10.0.0.1", Port: 80}, {ID: "b", IP: "fd00::2", Port: 81, Weight: 5}},
		Revision:  7,
	}
}

func TestEnvelopeRoundTrip(t *testing.T) {
	want := sampleState()
	env, err := events.NewEnvelope("test", events.RoutingChanged("web"), want)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := events.Decode(events.RoutingChanged("web"), raw)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	got, ok := ev.Payload.(events.RoutingState)
	if !ok {
		t.Fatalf("payload is %T", ev.Payload)
	}
	a, _ := json.Marshal(got)
	b, _ := json.Marshal(want)
	if !bytes.Equal(a, b) {
		t.Fatalf("round trip changed the payload:\n got %s\nwant %s", a, b)
	}
	if ev.Envelope.SpecVersion != "1.0" || ev.Envelope.Type != "io.orchestry.routing.changed.v1" || ev.Envelope.ID == "" {
		t.Fatalf("envelope fields: %+v", ev.Envelope)
	}
}

// rawEnvelope builds an envelope by hand, as another system without this
// package would.
func rawEnvelope(typ, data string) []byte {
	return []byte(`{"specversion":"1.0","id":"x-1","source":"ext","type":"` + typ +
		`","time":"2026-01-02T03:04:05Z","datacontenttype":"application/json","data":` + data + `}`)
}

func TestDecodeRejects(t *testing.T) {
	reg := "io.orchestry.instance.registered.v1"
	tests := []struct {
		name    string
		subject string
		raw     []byte
		reason  string
	}{
		{"not json", "instance.registered.web", []byte(`{nope`), "envelope"},
		{"no specversion", "instance.registered.web", []byte(`{"id":"1","source":"s","type":"` + reg + `","time":"2026-01-02T03:04:05Z","datacontenttype":"application/json","data":{}}`), "specversion"},
		{"unknown type", "instance.registered.web", rawEnvelope("io.example.nope", `{}`), "unknown event type"},
		{"type on wrong subject", "routing.changed.web", rawEnvelope(reg, `{"instance":{"id":"a","ip":"10.0.0.1","port":80}}`), "does not belong"},
		{"unknown data field", "instance.registered.web", rawEnvelope(reg, `{"instance":{"id":"a","ip":"10.0.0.1","port":80,"colour":"red"}}`), "colour"},
		{"missing field", "instance.registered.web", rawEnvelope(reg, `{"instance":{"id":"a","port":80}}`), "ip"},
		{"wrong type", "instance.registered.web", rawEnvelope(reg, `{"instance":{"id":"a","ip":"10.0.0.1","port":"80"}}`), "port"},
		{"bad ip", "instance.registered.web", rawEnvelope(reg, `{"instance":{"id":"a","ip":"10.0.0.999","port":80}}`), "instance.ip"},
		{"injection in id", "instance.registered.web", rawEnvelope(reg, `{"instance":{"id":"a;}","ip":"10.0.0.1","port":80}}`), "instance.id"},
		{"state about another app", "routing.changed.web", rawEnvelope("io.orchestry.routing.changed.v1", `{"app":{"metadata":{"name":"api"},"spec":{"networking":{}}},"revision":1}`), "subject names"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := events.Decode(tc.subject, tc.raw)
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, events.ErrRejected) {
				t.Fatalf("error does not wrap ErrRejected: %v", err)
			}
			if !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("reason %q does not mention %q", err, tc.reason)
			}
		})
	}
}

func TestDecodeAcceptsHandWrittenJSON(t *testing.T) {
	raw := rawEnvelope("io.orchestry.instance.registered.v1", `{"instance":{"id":"web-1","ip":"10.0.0.1","port":8080}}`)
	ev, err := events.Decode("instance.registered.web", raw)
	if err != nil {
		t.Fatal(err)
	}
	if got := ev.Payload.(events.InstanceRegistration).Instance.ID; got != "web-1" {
		t.Fatalf("id %q", got)
	}
}

func TestNewEnvelopeRefusesInvalidPayload(t *testing.T) {
	st := sampleState()
	st.App.Spec.Networking.Headers = map[string]string{"X-A": `x"; return 200 "pwned`}
	if _, err := events.NewEnvelope("test", events.RoutingChanged("web"), st); err == nil || !strings.Contains(err.Error(), "spec.networking.headers.X-A") {
		t.Fatalf("want error naming the header field, got %v", err)
	}
}

func TestGateIgnoresOlderAndRepeatedRevisions(t *testing.T) {
	var g events.Gate
	steps := []struct {
		key  string
		rev  uint64
		want bool
	}{
		{"web", 3, true}, {"web", 3, false}, {"web", 2, false}, {"api", 1, true}, {"web", 4, true}, {"web", 1, false},
	}
	for i, s := range steps {
		if got := g.Admit(s.key, s.rev); got != s.want {
			t.Fatalf("step %d Admit(%s,%d) = %v, want %v", i, s.key, s.rev, got, s.want)
		}
	}
	if rev, _ := g.Last("web"); rev != 4 {
		t.Fatalf("Last(web) = %d", rev)
	}
}

// TestSchemaFilesMatchTypes holds the published schema files equal to the
// schemas derived from the Go types; run `go generate ./...` after changing
// a payload.
func TestSchemaFilesMatchTypes(t *testing.T) {
	want, err := events.Schemas()
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob("schema/*.json")
	if len(files) != len(want) {
		t.Fatalf("schema/ has %d files, types give %d", len(files), len(want))
	}
	for name, b := range want {
		got, err := os.ReadFile(filepath.Join("schema", name))
		if err != nil {
			t.Fatalf("%s: %v (run go generate ./...)", name, err)
		}
		if !bytes.Equal(got, b) {
			t.Errorf("schema/%s is stale: run go generate ./...", name)
		}
	}
}

func TestProvisionIsIdempotentAndDeduplicates(t *testing.T) {
	srv := eventstest.Start(t, "")
	_, js := srv.Connect(t) // provisions once
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := events.Provision(ctx, js, 1); err != nil {
		t.Fatalf("second provision: %v", err)
	}
	env, err := events.NewEnvelope("test", events.RoutingChanged("web"), sampleState())
	if err != nil {
		t.Fatal(err)
	}
	a1, err := events.PublishEnvelope(ctx, js, events.RoutingChanged("web"), env)
	if err != nil {
		t.Fatal(err)
	}
	a2, err := events.PublishEnvelope(ctx, js, events.RoutingChanged("web"), env)
	if err != nil {
		t.Fatal(err)
	}
	if !a2.Duplicate || a1.Sequence != a2.Sequence {
		t.Fatalf("repeat publish not de-duplicated: %+v %+v", a1, a2)
	}
	// A rejection lands in its own stream, outside every other family.
	if err := events.Reject(ctx, js, "test", "instance.registered.web", []byte(`{"id":"e1","type":"t"}`), errors.New("bad")); err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(ctx, events.StreamRejected)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetLastMsgForSubject(ctx, events.Rejected("instance.registered.web"))
	if err != nil {
		t.Fatal(err)
	}
	ev, err := events.Decode(m.Subject, m.Data)
	if err != nil {
		t.Fatal(err)
	}
	if r := ev.Payload.(events.Rejection); r.EventID != "e1" || r.Reason != "bad" || r.By != "test" {
		t.Fatalf("rejection %+v", r)
	}
}
