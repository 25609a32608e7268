package health

import (
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orchestry/orchestry/pkg/events"
	"github.com/orchestry/orchestry/pkg/events/eventstest"
)

// connBackend is an HTTP backend that counts the connections it saw
// closed.
type connBackend struct {
	srv    *httptest.Server
	closed atomic.Int64
}

func newConnBackend(t *testing.T) *connBackend {
	b := &connBackend{}
	b.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	b.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateClosed {
			b.closed.Add(1)
		}
	}
	b.srv.Start()
	t.Cleanup(b.srv.Close)
	return b
}

// TestRemovedTargetConnClosed checks that the kept-alive probe connection
// of an instance that is removed, or starts draining, is closed at once
// rather than after the prober's idle timeout.
func TestRemovedTargetConnClosed(t *testing.T) {
	srv := eventstest.Start(t, "")
	nc, _ := srv.Connect(t)
	events1 := collect(t, nc)
	gone, draining, stays := newConnBackend(t), newConnBackend(t), newConnBackend(t)
	port := func(b *connBackend) int { return b.srv.Listener.Addr().(*net.TCPAddr).Port }
	start(t, nc, "one", false)
	app := events.App{Metadata: events.Metadata{Name: "web"}, HealthCheck: fastCheck()}
	publishRouting(t, nc, events.RoutingState{App: app, Revision: 1, Instances: []events.Instance{
		{ID: "gone", IP: "127.0.0.1", Port: port(gone)},
		{ID: "draining", IP: "127.0.0.1", Port: port(draining)},
		{ID: "stays", IP: "127.0.0.1", Port: port(stays)},
	}})
	for _, id := range []string{"gone", "draining", "stays"} {
		waitFor(t, 10*time.Second, id+" healthy", func() bool {
			st, ok := events1.last(id)
			return ok && st.State == events.HealthHealthy
		})
	}
	time.Sleep(500 * time.Millisecond) // a few more probes on the same connections
	for name, b := range map[string]*connBackend{"gone": gone, "draining": draining, "stays": stays} {
		if n := b.closed.Load(); n != 0 {
			t.Fatalf("%s: %d connections closed while probed, want 0 (keep-alive)", name, n)
		}
	}
	publishRouting(t, nc, events.RoutingState{App: app, Revision: 2, Instances: []events.Instance{
		{ID: "draining", IP: "127.0.0.1", Port: port(draining), Draining: true},
		{ID: "stays", IP: "127.0.0.1", Port: port(stays)},
	}})
	waitFor(t, 5*time.Second, "removed instance's connection closed", func() bool { return gone.closed.Load() == 1 })
	waitFor(t, 5*time.Second, "draining instance's connection closed", func() bool { return draining.closed.Load() == 1 })
	time.Sleep(500 * time.Millisecond)
	if n := stays.closed.Load(); n != 0 {
		t.Errorf("stays: %d connections closed, want 0", n)
	}
}
