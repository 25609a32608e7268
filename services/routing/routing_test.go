package routing_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/orchestry/orchestry/pkg/events"
	"github.com/orchestry/orchestry/pkg/events/eventstest"
	"github.com/orchestry/orchestry/services/routing"
	"github.com/orchestry/orchestry/services/routing/api"
)

const token = "s3cret-token"

type harness struct {
	t    *testing.T
	base string
	js   jetstream.JetStream
}

// start runs the whole service against an embedded JetStream.
func start(t *testing.T) *harness {
	t.Helper()
	srv := eventstest.Start(t, "")
	nc, js := srv.Connect(t)
	if _, err := routing.New(nc, routing.Config{}, zerolog.Nop()); err == nil {
		t.Fatal("New accepted an empty token")
	}
	svc, err := routing.New(nc, routing.Config{APIToken: token}, zerolog.New(io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return &harness{t: t, base: "http://" + ln.Addr().String(), js: js}
}

func (h *harness) do(method, path, body string, out any) int {
	h.t.Helper()
	req, err := http.NewRequest(method, h.base+path, strings.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			h.t.Fatalf("%s %s: %v", method, path, err)
		}
	}
	return resp.StatusCode
}

func (h *harness) putApp(name string) {
	h.t.Helper()
	body := fmt.Sprintf(`{"apiVersion":"v1","kind":"App","metadata":{"name":%q},"spec":{"lb_method":"auto","session_affinity":true,"networking":{"domain":"%s.example.com"}}}`, name, name)
	if code := h.do("PUT", "/v1/apps/"+name, body, nil); code != http.StatusCreated {
		h.t.Fatalf("create %s: %d", name, code)
	}
}

// follow reads subject from the start of stream with an ordered consumer.
func (h *harness) follow(stream, subject string) jetstream.Consumer {
	h.t.Helper()
	c, err := h.js.OrderedConsumer(context.Background(), stream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	if err != nil {
		h.t.Fatal(err)
	}
	return c
}

// next returns the next decoded event of c (waiting at most 10s).
func (h *harness) next(c jetstream.Consumer) (events.Event, jetstream.Msg) {
	h.t.Helper()
	msg, err := c.Next(jetstream.FetchMaxWait(10 * time.Second))
	if err != nil {
		h.t.Fatalf("no event: %v", err)
	}
	ev, err := events.Decode(msg.Subject(), msg.Data())
	if err != nil {
		h.t.Fatalf("published event does not decode: %v", err)
	}
	return ev, msg
}

func TestRoutingChangedPerChange(t *testing.T) {
	h := start(t)
	h.putApp("shop")
	h.do("POST", "/v1/apps/shop/instances", `{"id":"a","ip":"10.0.0.1","port":8080}`, nil)
	h.do("POST", "/v1/apps/shop/instances", `{"id":"b","ip":"10.0.0.2","port":8080}`, nil)
	h.do("DELETE", "/v1/apps/shop/instances/a", "", nil)
	if code := h.do("DELETE", "/v1/apps/shop", "", nil); code != http.StatusNoContent {
		t.Fatalf("delete: %d", code)
	}
	c := h.follow(events.StreamRouting, events.RoutingChanged("shop"))
	wantIDs := [][]string{{}, {"a"}, {"a", "b"}, {"b"}, nil}
	var last uint64
	for i, want := range wantIDs {
		ev, _ := h.next(c)
		st := ev.Payload.(events.RoutingState)
		if st.Revision <= last {
			t.Errorf("change %d: revision %d not after %d", i, st.Revision, last)
		}
		last = st.Revision
		if ev.Envelope.ID != fmt.Sprintf("routing-shop-%d", st.Revision) {
			t.Errorf("change %d: envelope id %q", i, ev.Envelope.ID)
		}
		if want == nil {
			if !st.Deleted || st.App.Metadata.Name != "shop" {
				t.Errorf("change %d: want deletion, got %+v", i, st)
			}
			continue
		}
		var ids []string
		for _, in := range st.Instances {
			ids = append(ids, in.ID)
		}
		if strings.Join(ids, ",") != strings.Join(want, ",") {
			t.Errorf("change %d: instances %v, want %v", i, ids, want)
		}
		// Published state is resolved: auto + affinity -> ip_hash, port 80.
		if st.App.Spec.LBMethod != events.LBIPHash || st.App.Spec.Networking.ExternalPort != 80 {
			t.Errorf("change %d: not resolved: %+v", i, st.App.Spec)
		}
	}
}

// rawEvent is an envelope as another system would write it by hand.
func rawEvent(id, typ, data string) []byte {
	return fmt.Appendf(nil, `{"specversion":"1.0","id":%q,"source":"orchestrator","type":%q,"time":"2025-01-02T03:04:05Z","datacontenttype":"application/json","data":%s}`, id, typ, data)
}

func TestRawNATSRegistrationAndRemoval(t *testing.T) {
	h := start(t)
	h.putApp("shop")
	ctx := context.Background()
	changes := h.follow(events.StreamRouting, events.RoutingChanged("shop"))
	h.next(changes) // the creation

	raw := rawEvent("ev-1", "io.orchestry.instance.registered.v1", `{"instance":{"id":"web-1","ip":"10.1.2.3","port":9000,"weight":3}}`)
	if _, err := h.js.Publish(ctx, events.InstanceRegistered("shop"), raw); err != nil {
		t.Fatal(err)
	}
	ev, _ := h.next(changes)
	st := ev.Payload.(events.RoutingState)
	if len(st.Instances) != 1 || st.Instances[0] != (events.Instance{ID: "web-1", IP: "10.1.2.3", Port: 9000, Weight: 3}) {
		t.Fatalf("after registration: %+v", st.Instances)
	}
	var iv api.InstancesView
	if h.do("GET", "/v1/apps/shop/instances", "", &iv); len(iv.Instances) != 1 || iv.Revision != st.Revision {
		t.Errorf("REST view %+v, state revision %d", iv, st.Revision)
	}

	raw = rawEvent("ev-2", "io.orchestry.instance.deregistered.v1", `{"id":"web-1"}`)
	if _, err := h.js.Publish(ctx, events.InstanceDeregistered("shop"), raw); err != nil {
		t.Fatal(err)
	}
	ev, _ = h.next(changes)
	if st := ev.Payload.(events.RoutingState); len(st.Instances) != 0 || st.Deleted {
		t.Fatalf("after removal: %+v", st)
	}
}

func TestMalformedEventsRejected(t *testing.T) {
	h := start(t)
	h.putApp("shop")
	ctx := context.Background()
	var before api.AppView
	h.do("GET", "/v1/apps/shop", "", &before)

	reg, dereg := events.InstanceRegistered("shop"), events.InstanceDeregistered("shop")
	cases := []struct {
		name, subject string
		raw           []byte
		reason        string
	}{
		{"bad JSON", reg, []byte(`{"specversion":`), "envelope"},
		{"unknown type", reg, rawEvent("u1", "io.orchestry.instance.exploded.v1", `{}`), "unknown event type"},
		{"invalid ip", reg, rawEvent("u2", "io.orchestry.instance.registered.v1", `{"instance":{"id":"x","ip":"300.1.1.1","port":80}}`), "ip"},
		{"unknown app", events.InstanceRegistered("nope"), rawEvent("u3", "io.orchestry.instance.registered.v1", `{"instance":{"id":"x","ip":"10.0.0.1","port":80}}`), "app not found"},
		{"absent instance", dereg, rawEvent("u4", "io.orchestry.instance.deregistered.v1", `{"id":"ghost"}`), "instance not found"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rejections := h.follow(events.StreamRejected, events.Rejected(c.subject))
			if _, err := h.js.Publish(ctx, c.subject, c.raw); err != nil {
				t.Fatal(err)
			}
			var r events.Rejection
			// Skip rejections of earlier cases on the same subject.
			for range 10 {
				ev, _ := h.next(rejections)
				r = ev.Payload.(events.Rejection)
				if strings.Contains(r.Reason, c.reason) {
					break
				}
			}
			if !strings.Contains(r.Reason, c.reason) || r.By != "routing" || r.Subject != c.subject {
				t.Errorf("rejection %+v, want reason containing %q", r, c.reason)
			}
		})
	}
	var after api.AppView
	h.do("GET", "/v1/apps/shop", "", &after)
	if after.Revision != before.Revision || len(after.Instances) != 0 {
		t.Errorf("app changed by rejected events: %+v", after)
	}
	var eb api.ErrorBody
	if code := h.do("GET", "/v1/apps/nope", "", &eb); code != http.StatusNotFound {
		t.Errorf("unknown app created: %d", code)
	}
}

func TestStatusFromRenderReports(t *testing.T) {
	h := start(t)
	ctx := context.Background()
	publish := func(rev uint64, outcome string) {
		r := events.RenderReport{Node: "edge-1", Version: rev, Attempted: rev, Hash: fmt.Sprintf("h%d", rev), Outcome: outcome, Apps: 2, Revision: rev}
		if _, err := events.Publish(ctx, h.js, "renderer", events.ConfigRendered("edge-1"), r); err != nil {
			t.Fatal(err)
		}
	}
	publish(7, events.OutcomeApplied)
	var sv api.StatusView
	for range 200 {
		if h.do("GET", "/v1/status", "", &sv); len(sv.Nodes) > 0 {
			break
		}
		time.Sleep(25 * time.Millisecond)
	}
	if len(sv.Nodes) != 1 {
		t.Fatalf("status never showed the node: %+v", sv)
	}
	n := sv.Nodes[0]
	if n.Node != "edge-1" || n.Version != 7 || n.Outcome != events.OutcomeApplied || n.Hash != "h7" || n.Apps != 2 || n.ReceivedAt.IsZero() {
		t.Errorf("node status %+v", n)
	}
	// A newer report replaces it (older ones are refused by the gate; see
	// the status package's unit test).
	publish(8, events.OutcomeInvalid)
	for range 200 {
		if h.do("GET", "/v1/status", "", &sv); len(sv.Nodes) == 1 && sv.Nodes[0].Revision == 8 {
			break
		}
		time.Sleep(25 * time.Millisecond)
	}
	if n := sv.Nodes[0]; n.Revision != 8 || n.Outcome != events.OutcomeInvalid {
		t.Errorf("node status after newer report %+v", n)
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	srv := eventstest.Start(t, "")
	nc, _ := srv.Connect(t)
	svc, err := routing.New(nc, routing.Config{APIToken: token}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := svc.Run(ctx, ln); err != nil {
		t.Fatalf("Run after cancel: %v", err)
	}
}

func TestInstanceListShowsHealthFromTheHealthBucket(t *testing.T) {
	h := start(t)
	h.putApp("web")
	if code := h.do(http.MethodPost, "/v1/apps/web/instances", `{"id":"web:1","ip":"10.0.0.1","port":80}`, nil); code != http.StatusCreated {
		t.Fatalf("POST instance: %d", code)
	}
	ctx := context.Background()
	kv, err := h.js.KeyValue(ctx, events.BucketHealth)
	if err != nil {
		t.Fatal(err)
	}
	since := time.Date(2026, 11, 25, 7, 0, 0, 0, time.UTC)
	state := events.HealthState{App: "web", InstanceID: "web:1", State: events.HealthUnhealthy, ConsecutiveFailures: 3,
		LastError: "connect: connection refused", Since: since, Revision: 1}
	b, _ := json.Marshal(state)
	if _, err := kv.Put(ctx, events.HealthKey("web", "web:1"), b); err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		var view api.InstancesView
		h.do(http.MethodGet, "/v1/apps/web/instances", "", &view)
		if len(view.Instances) == 1 && view.Instances[0].Health != nil {
			got := view.Instances[0].Health
			if got.State != events.HealthUnhealthy || got.LastError != state.LastError || !got.Since.Equal(since) {
				t.Fatalf("health shown as %+v", got)
			}
			return
		}
		if i == 200 {
			t.Fatalf("health never shown: %+v", view)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestCertsListShowsEachTLSDomainsStateWithoutKeys(t *testing.T) {
	h := start(t)
	for _, a := range []struct{ name, domain string }{{"shop", "shop.example.com"}, {"blog", "blog.example.com"}, {"new", "new.example.com"}} {
		body := fmt.Sprintf(`{"apiVersion":"v1","kind":"App","metadata":{"name":%q},"spec":{"networking":{"domain":%q,"ssl":{"enabled":true}}}}`, a.name, a.domain)
		if code := h.do(http.MethodPut, "/v1/apps/"+a.name, body, nil); code != http.StatusCreated {
			t.Fatalf("PUT %s: %d", a.name, code)
		}
	}
	ctx := context.Background()
	now := time.Now().UTC()
	issued := events.Certificate{Domain: "shop.example.com", Serial: "0a1b", NotBefore: now.Add(-time.Hour), NotAfter: now.Add(90 * 24 * time.Hour),
		Issuer: "Pebble Intermediate CA", FingerprintSHA256: "ab12"}
	if _, err := events.Publish(ctx, h.js, "certs", events.CertIssued(issued.Domain), issued); err != nil {
		t.Fatal(err)
	}
	failed := events.CertFailure{Domain: "blog.example.com", Reason: "acme: connection refused", NextAttempt: now.Add(time.Minute)}
	if _, err := events.Publish(ctx, h.js, "certs", events.CertFailed(failed.Domain), failed); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"blog.example.com": "failed", "new.example.com": "pending", "shop.example.com": "valid"}
	for i := 0; ; i++ {
		var view struct {
			Certs []api.CertView `json:"certs"`
		}
		h.do(http.MethodGet, "/v1/certs", "", &view)
		got := map[string]string{}
		for _, c := range view.Certs {
			got[c.Domain] = c.State
		}
		if maps.Equal(got, want) {
			for _, c := range view.Certs {
				switch c.Domain {
				case "shop.example.com":
					if c.Serial != "0a1b" || c.NotAfter == nil || !c.NotAfter.Equal(issued.NotAfter) || len(c.Apps) != 1 || c.Apps[0] != "shop" {
						t.Errorf("shop: %+v", c)
					}
				case "blog.example.com":
					if c.LastError != failed.Reason || c.NextAttempt == nil {
						t.Errorf("blog: %+v", c)
					}
				}
			}
			return
		}
		if i == 200 {
			t.Fatalf("states %v, want %v", got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
