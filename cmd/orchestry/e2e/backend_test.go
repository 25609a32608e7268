package e2e

import (
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// backend is a real HTTP backend on loopback that a test can kill, revive,
// make answer 500 on its traffic paths, or make flap on its health path. It
// answers /healthz for probes and everything else as traffic, and records
// when it last served traffic.
type backend struct {
	t    *testing.T
	ID   string
	Port int

	fail500 atomic.Bool  // traffic answers 500 (health stays 200)
	flap    atomic.Bool  // health alternates 200 and 503 on each probe
	probes  atomic.Int64 // health requests seen
	served  atomic.Int64 // traffic requests seen
	last    atomic.Int64 // unix nanos of the last traffic request

	mu  sync.Mutex
	srv *http.Server
}

// startBackend listens on a free loopback port.
func startBackend(t *testing.T, id string) *backend {
	t.Helper()
	b := &backend{t: t, ID: id}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b.Port = ln.Addr().(*net.TCPAddr).Port
	b.serve(ln)
	t.Cleanup(b.Kill)
	return b
}

func (b *backend) serve(ln net.Listener) {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		n := b.probes.Add(1)
		if b.flap.Load() && n%2 == 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		b.served.Add(1)
		b.last.Store(time.Now().UnixNano())
		w.Header().Set("X-Instance", b.ID)
		if b.fail500.Load() {
			w.WriteHeader(http.StatusInternalServerError)
		}
		fmt.Fprintf(w, "%s\n", b.ID)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	b.mu.Lock()
	b.srv = srv
	b.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

// Kill closes the listener and every open connection, as a crashed process
// would: connections are refused from now on.
func (b *backend) Kill() {
	b.mu.Lock()
	srv := b.srv
	b.srv = nil
	b.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// Revive listens again on the same port.
func (b *backend) Revive() {
	b.t.Helper()
	var ln net.Listener
	var err error
	for range 50 { // the port may linger for a moment
		if ln, err = net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", b.Port)); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		b.t.Fatalf("revive %s: %v", b.ID, err)
	}
	b.serve(ln)
}

// lastServed is when the backend last answered traffic (zero: never).
func (b *backend) lastServed() time.Time {
	n := b.last.Load()
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}
