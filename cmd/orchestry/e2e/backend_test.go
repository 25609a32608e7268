package e2e

import (
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orchestry/orchestry/services/health/probe"
)

// backend is a real HTTP backend on loopback that a test can kill, revive,
// make answer 500 on its traffic paths, make flap on its health path, or
// make dead. It answers /healthz for probes and everything else as traffic,
// and records when it last served traffic.
type backend struct {
	t    testing.TB
	ID   string
	Port int

	fail500 atomic.Bool  // traffic answers 500 (health stays 200)
	sent500 atomic.Int64 // 500s answered to traffic
	flap    atomic.Bool  // health alternates 200 and 503 on each probe
	probes  atomic.Int64 // health requests seen
	served  atomic.Int64 // traffic requests seen
	last    atomic.Int64 // unix nanos of the last traffic request
	delay   atomic.Int64 // nanoseconds each traffic request waits before its answer

	// dead: every request, probe or traffic, has its connection reset once
	// read, so NGINX counts an error and tries the next server; unlike
	// Kill, the requests still arrive and the times of traffic ones (not
	// carrying the prober header) are recorded in deadSeen.
	dead     atomic.Bool
	deadMu   sync.Mutex
	deadSeen []time.Time

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
		b.last.Store(time.Now().UnixNano())
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
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if b.dead.Load() {
			b.reset(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	b.mu.Lock()
	b.srv = srv
	b.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

// reset records a traffic request seen while dead and resets its
// connection (RST, not FIN).
func (b *backend) reset(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get(probe.ProberHeader) == "" {
		b.deadMu.Lock()
		if len(b.deadSeen) < 100_000 {
			b.deadSeen = append(b.deadSeen, time.Now())
		}
		b.deadMu.Unlock()
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

// seenDead returns the times of the traffic requests seen while dead.
func (b *backend) seenDead() []time.Time {
	b.deadMu.Lock()
	defer b.deadMu.Unlock()
	return append([]time.Time(nil), b.deadSeen...)
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
