package events_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/orchestry/orchestry/pkg/events"
	"github.com/orchestry/orchestry/pkg/events/eventstest"
)

// violations collects the permission errors the server sends a connection.
type violations struct {
	mu   sync.Mutex
	errs []string
}

func (v *violations) handler(_ *nats.Conn, _ *nats.Subscription, err error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.errs = append(v.errs, err.Error())
}

// wait reports whether a violation naming subject arrived within 2s.
func (v *violations) wait(subject string) bool {
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		v.mu.Lock()
		for _, e := range v.errs {
			if strings.Contains(strings.ToLower(e), "permissions violation") && strings.Contains(e, subject) {
				v.mu.Unlock()
				return true
			}
		}
		v.mu.Unlock()
	}
	return false
}

func TestEachServiceIsRefusedWhatItsPermissionsDoNotAllow(t *testing.T) {
	srv := eventstest.StartSecured(t, "")
	_, adminJS := srv.Connect(t) // provisions everything
	ctx := context.Background()
	certsKV, err := adminJS.KeyValue(ctx, events.BucketCerts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := certsKV.Put(ctx, "a.example.com", []byte(`{"key_pem":"secret"}`)); err != nil {
		t.Fatal(err)
	}

	as := func(name string) (*violations, jetstream.JetStream) {
		v := &violations{}
		nc := srv.ConnectAs(t, name, nats.ErrorHandler(v.handler))
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		return v, js
	}
	short := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, 2*time.Second) }
	now := time.Now().UTC()

	t.Run("health may not publish routing.changed", func(t *testing.T) {
		v, js := as(events.ServiceHealth)
		c, cancel := short()
		defer cancel()
		st := events.RoutingState{App: events.App{Metadata: events.Metadata{Name: "web"}}, Revision: 1}
		if _, err := events.Publish(c, js, "health", events.RoutingChanged("web"), st); err == nil {
			t.Fatal("health published routing.changed")
		}
		if !v.wait("routing.changed.web") {
			t.Error("no permissions violation reported for routing.changed.web")
		}
		// Its own events go through.
		c2, cancel2 := short()
		defer cancel2()
		hs := events.HealthState{App: "web", InstanceID: "i1", State: events.HealthHealthy, Since: now, Revision: 1}
		if _, err := events.Publish(c2, js, "health", events.InstanceHealth("web"), hs); err != nil {
			t.Fatalf("health's own event: %v", err)
		}
	})
	t.Run("routing may not read the certificates bucket", func(t *testing.T) {
		v, js := as(events.ServiceRouting)
		c, cancel := short()
		defer cancel()
		if kv, err := js.KeyValue(c, events.BucketCerts); err == nil {
			if e, err := kv.Get(c, "a.example.com"); err == nil {
				t.Fatalf("routing read a certificate bundle: %q", e.Value())
			}
		}
		if !v.wait("KV_certs") {
			t.Error("no permissions violation reported for the certs stream")
		}
		// Nor watch its subjects with a plain subscription.
		nc := srv.ConnectAs(t, events.ServiceRouting, nats.ErrorHandler(v.handler))
		if _, err := nc.Subscribe("$KV.certs.>", func(*nats.Msg) {}); err == nil {
			_ = nc.Flush()
		}
		if !v.wait("$KV.certs.>") {
			t.Error("no permissions violation reported for subscribing to $KV.certs.>")
		}
		// Its own bucket it writes; another's it may read but not write.
		c2, cancel2 := short()
		defer cancel2()
		apps, err := js.KeyValue(c2, events.BucketApps)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := apps.Put(c2, "web", []byte("{}")); err != nil {
			t.Fatalf("routing's own bucket: %v", err)
		}
		health, err := js.KeyValue(c2, events.BucketHealth)
		if err != nil {
			t.Fatalf("routing reads the health bucket: %v", err)
		}
		if _, err := health.Put(c2, "web.x", []byte("{}")); err == nil {
			t.Fatal("routing wrote the health bucket")
		}
	})
	t.Run("the renderer reads certificates but may not write them", func(t *testing.T) {
		_, js := as(events.ServiceRenderer)
		c, cancel := short()
		defer cancel()
		kv, err := js.KeyValue(c, events.BucketCerts)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := kv.Get(c, "a.example.com"); err != nil {
			t.Fatalf("renderer read: %v", err)
		}
		if _, err := kv.Put(c, "b.example.com", []byte("{}")); err == nil {
			t.Fatal("renderer wrote a certificate")
		}
	})
	t.Run("another system may register instances, nothing else", func(t *testing.T) {
		v, js := as(events.ServiceClient)
		c, cancel := short()
		defer cancel()
		reg := events.InstanceRegistration{Instance: events.Instance{ID: "i1", IP: "10.0.0.1", Port: 80}}
		if _, err := events.Publish(c, js, "orchestrator", events.InstanceRegistered("web"), reg); err != nil {
			t.Fatalf("client registration: %v", err)
		}
		c2, cancel2 := short()
		defer cancel2()
		m := events.UpstreamMetrics{App: "web", WindowStart: now, WindowSeconds: 10}
		if _, err := events.Publish(c2, js, "orchestrator", events.MetricsUpstream("web"), m); err == nil {
			t.Fatal("a client published metrics.upstream")
		}
		if !v.wait("metrics.upstream.web") {
			t.Error("no permissions violation reported for metrics.upstream.web")
		}
	})
	t.Run("no service deletes a stream", func(t *testing.T) {
		_, js := as(events.ServiceCerts)
		c, cancel := short()
		defer cancel()
		if err := js.DeleteStream(c, events.StreamRouting); err == nil {
			t.Fatal("certs deleted the ROUTING stream")
		} else if errors.Is(err, context.Canceled) {
			t.Fatal(err)
		}
	})
}

func TestEachServiceProvisionsWhatItUsesUnderItsPermissions(t *testing.T) {
	srv := eventstest.StartSecured(t, "")
	for _, name := range events.Services() {
		if name == events.ServiceClient {
			continue
		}
		nc := srv.ConnectAs(t, name)
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := events.ProvisionFor(ctx, js, 1, name); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		cancel()
	}
}
