package health

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/orchestry/orchestry/pkg/events"
	"github.com/orchestry/orchestry/services/health/probe"
)

// backend is a real HTTP instance that counts probes per prober replica.
type backend struct {
	srv  *httptest.Server
	mu   sync.Mutex
	hits map[string]int
}

func newBackend(t *testing.T) *backend {
	t.Helper()
	b := &backend{hits: map[string]int{}}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		b.hits[r.Header.Get(probe.ProberHeader)]++
		b.mu.Unlock()
	}))
	t.Cleanup(b.srv.Close)
	return b
}

func (b *backend) port(t *testing.T) int {
	t.Helper()
	_, p, err := net.SplitHostPort(b.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return n
}

// take returns the probe counts per replica and resets them.
func (b *backend) take() map[string]int {
	b.mu.Lock()
	defer b.mu.Unlock()
	h := b.hits
	b.hits = map[string]int{}
	return h
}

func (b *backend) total() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, c := range b.hits {
		n += c
	}
	return n
}

// collector gathers every instance.health event of the test, decoded.
type collector struct {
	mu  sync.Mutex
	all []events.HealthState
}

func collect(t *testing.T, nc *nats.Conn) *collector {
	t.Helper()
	c := &collector{}
	sub, err := nc.Subscribe(events.InstanceHealthWildcard, func(m *nats.Msg) {
		ev, err := events.Decode(m.Subject, m.Data)
		if err != nil {
			t.Errorf("bad instance.health event: %v", err)
			return
		}
		c.mu.Lock()
		c.all = append(c.all, ev.Payload.(events.HealthState))
		c.mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return c
}

// of returns the events about instance id, in order.
func (c *collector) of(id string) []events.HealthState {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []events.HealthState
	for _, st := range c.all {
		if st.InstanceID == id {
			out = append(out, st)
		}
	}
	return out
}

func (c *collector) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.all)
}

// last returns the latest state reported for id, if any.
func (c *collector) last(id string) (events.HealthState, bool) {
	evs := c.of(id)
	if len(evs) == 0 {
		return events.HealthState{}, false
	}
	return evs[len(evs)-1], true
}

// waitFor polls cond every 20ms for at most d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// running is a started Service and how to stop it.
type running struct {
	svc    *Service
	cancel context.CancelFunc
	done   chan struct{}
	err    error
	t      *testing.T
}

func start(t *testing.T, nc *nats.Conn, replica string, crash bool) *running {
	t.Helper()
	return startWith(t, nc, replica, crash, nil)
}

// startWith starts a replica whose test configuration edit changes first.
func startWith(t *testing.T, nc *nats.Conn, replica string, crash bool, edit func(*Config)) *running {
	t.Helper()
	cfg := Config{Workers: 8, InitialState: events.HealthUnhealthy, Replica: replica,
		Heartbeat: 100 * time.Millisecond, Lease: 400 * time.Millisecond}
	if edit != nil {
		edit(&cfg)
	}
	svc, err := New(nc, cfg, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel).With().Timestamp().Logger())
	if err != nil {
		t.Fatal(err)
	}
	svc.crash = crash
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{svc: svc, cancel: cancel, done: make(chan struct{}), t: t}
	go func() {
		defer close(r.done)
		r.err = svc.Run(ctx)
	}()
	t.Cleanup(r.stop)
	return r
}

// stop cancels the service and waits (bounded) for Run to return nil.
func (r *running) stop() {
	r.cancel()
	select {
	case <-r.done:
		if r.err != nil {
			r.t.Errorf("Run returned %v", r.err)
		}
	case <-time.After(10 * time.Second):
		r.t.Error("Run did not return within 10s of cancel")
	}
}

func publishRouting(t *testing.T, nc *nats.Conn, rs events.RoutingState) {
	t.Helper()
	js, err := jetstreamNew(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := events.Publish(ctx, js, "test", events.RoutingChanged(rs.App.Metadata.Name), rs); err != nil {
		t.Fatal(err)
	}
}

func fastCheck() *events.HealthCheck {
	return &events.HealthCheck{Path: "/healthz", PeriodSeconds: 0.2, TimeoutSeconds: 0.2, FailureThreshold: 2}
}
