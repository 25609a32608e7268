package lease

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/orchestry/orchestry/pkg/events/eventstest"
)

const ttl = 1500 * time.Millisecond

func bucket(t *testing.T) jetstream.KeyValue {
	t.Helper()
	srv := eventstest.Start(t, "")
	_, js := srv.Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "lease-test", TTL: ttl, Storage: jetstream.MemoryStorage})
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

// replica runs one campaigner and counts how long it leads.
type replica struct {
	l       *Lease
	leading atomic.Bool
	wins    atomic.Int32
	cancel  context.CancelFunc
	done    chan struct{}
}

func run(t *testing.T, kv jetstream.KeyValue, holder string, keep bool) *replica {
	t.Helper()
	l, err := New(kv, Config{Key: "issuer", Holder: holder, TTL: ttl, KeepOnStop: keep}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &replica{l: l, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		_ = l.Run(ctx, func(ctx context.Context) {
			r.wins.Add(1)
			r.leading.Store(true)
			<-ctx.Done()
			r.leading.Store(false)
		})
	}()
	t.Cleanup(r.stop)
	return r
}

func (r *replica) stop() {
	r.cancel()
	<-r.done
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < d {
		if cond() {
			return time.Since(start)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: not within %s", what, d)
	return 0
}

func TestLease(t *testing.T) {
	for _, tc := range []struct {
		name string
		// keep: the first holder stops as if it crashed.
		keep bool
		// within: how soon the standby must take over.
		within time.Duration
	}{
		{"clean stop releases: the standby takes over at once", false, ttl},
		{"crash: the standby takes over when the key lapses", true, 2*ttl + ttl/3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kv := bucket(t)
			a := run(t, kv, "a", tc.keep)
			waitFor(t, 5*time.Second, "a leads", a.leading.Load)
			b := run(t, kv, "b", false)
			// Over several renewals, b never leads while a does.
			deadline := time.Now().Add(2 * ttl)
			for time.Now().Before(deadline) {
				if b.leading.Load() || !a.l.Held() {
					t.Fatalf("b leading %v, a held %v", b.leading.Load(), a.l.Held())
				}
				time.Sleep(50 * time.Millisecond)
			}
			a.stop()
			took := waitFor(t, tc.within, "b takes over", b.leading.Load)
			t.Logf("b took over after %s", took)
			if a.wins.Load() != 1 || b.wins.Load() != 1 {
				t.Fatalf("wins a=%d b=%d, want 1 each", a.wins.Load(), b.wins.Load())
			}
		})
	}
}

func TestLeaseLostStopsLeading(t *testing.T) {
	kv := bucket(t)
	a := run(t, kv, "a", false)
	waitFor(t, 5*time.Second, "a leads", a.leading.Load)
	// Another writer takes the key: a's next renewal fails.
	if _, err := kv.Put(context.Background(), "issuer", []byte("intruder")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ttl, "a stops leading", func() bool { return !a.leading.Load() && !a.l.Held() })
	// a does not win it back while the intruder's write stands.
	time.Sleep(ttl / 2)
	if a.leading.Load() {
		t.Fatal("a leads again while another holds the key")
	}
	// Once it lapses, a campaigns and wins again.
	waitFor(t, 3*ttl, "a leads again", a.leading.Load)
	if a.wins.Load() != 2 {
		t.Fatalf("wins %d, want 2", a.wins.Load())
	}
}

func TestLeaseAdoptsOwnKey(t *testing.T) {
	kv := bucket(t)
	if _, err := kv.Create(context.Background(), "issuer", []byte("a")); err != nil {
		t.Fatal(err)
	}
	a := run(t, kv, "a", false)
	waitFor(t, ttl, "a adopts its own key", a.leading.Load)
}

func TestNewChecksConfig(t *testing.T) {
	for _, cfg := range []Config{{Holder: "a", TTL: ttl}, {Key: "k", TTL: ttl}, {Key: "k", Holder: "a"}} {
		if _, err := New(nil, cfg, zerolog.Nop()); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
}
