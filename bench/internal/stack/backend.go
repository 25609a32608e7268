package stack

import (
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/orchestry/orchestry/services/health/probe"
)

// Backend is an HTTP backend on loopback: it answers /healthz for probes
// and everything else as traffic ("ok\n"), records when it first served
// traffic, and can be made dead: every request then has its connection
// reset once read (NGINX counts an error and tries the next server), and
// the times of the traffic requests it still gets are recorded.
type Backend struct {
	ID   string
	Port int

	served atomic.Int64
	first  atomic.Int64 // unix nanos of the first traffic request
	dead   atomic.Bool

	mu       sync.Mutex
	deadSeen []time.Time
	srv      *http.Server
}

// StartBackend listens on a free loopback port.
func StartBackend(id string) (*Backend, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("backend %s: %w", id, err)
	}
	b := &Backend{ID: id, Port: ln.Addr().(*net.TCPAddr).Port}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		traffic := r.Header.Get(probe.ProberHeader) == ""
		if b.dead.Load() {
			b.reset(w, traffic)
			return
		}
		if traffic && r.URL.Path != "/healthz" {
			b.served.Add(1)
			b.first.CompareAndSwap(0, time.Now().UnixNano())
		}
		w.Header().Set("X-Instance", b.ID)
		_, _ = w.Write([]byte("ok\n"))
	})
	b.srv = &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = b.srv.Serve(ln) }()
	return b, nil
}

func (b *Backend) reset(w http.ResponseWriter, traffic bool) {
	if traffic {
		b.mu.Lock()
		if len(b.deadSeen) < 100_000 {
			b.deadSeen = append(b.deadSeen, time.Now())
		}
		b.mu.Unlock()
	}
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// Addr is the backend's host:port.
func (b *Backend) Addr() string { return fmt.Sprintf("127.0.0.1:%d", b.Port) }

// Served counts the traffic requests answered.
func (b *Backend) Served() int64 { return b.served.Load() }

// First is when the backend first served traffic (zero: never).
func (b *Backend) First() time.Time {
	if n := b.first.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// Die makes the backend dead from now on.
func (b *Backend) Die() { b.dead.Store(true) }

// SeenDead returns the times of the traffic requests received while dead.
func (b *Backend) SeenDead() []time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]time.Time(nil), b.deadSeen...)
}

// Close stops the backend.
func (b *Backend) Close() { _ = b.srv.Close() }
