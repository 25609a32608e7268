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
// answers /healthz for probes and everything else as traffic. (The backend
// that records the requests it gets while dead, for the failure-convergence
// benchmark, is bench/internal/stack's.)
type backend struct {
	t    testing.TB
	ID   string
	Port int

	fail500 atomic.Bool  // traffic answers 500 (health stays 200)
	sent500 atomic.Int64 // 500s answered to traffic
	flap    atomic.Bool  // health alternates 200 and 503 on each probe
	probes  atomic.Int64 // health requests seen
	served  atomic.Int64 // traffic requests seen
	delay   atomic.Int64 // nanoseconds each traffic request waits before its answer

	mu  sync.Mutex
	srv *http.Server
}

// startBackend listens on a free loopback port.
func startBackend(t testing.TB, id string) *backend {
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
		w.Header().Set("X-Instance", b.ID)
		w.Header().Set("X-Request-URI", r.RequestURI)
		if r.URL.Path == "/slow" { // holds the connection: a long request
			time.Sleep(1500 * time.Millisecond)
		}
		time.Sleep(time.Duration(b.delay.Load()))
		if b.fail500.Load() {
			b.sent500.Add(1)
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
