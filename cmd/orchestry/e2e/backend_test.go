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

// switchable is a backend on a fixed loopback port that a test can kill
// (close the listener and every connection) and bring back on the same
// port, and whose health answer can flap.
type switchable struct {
	t    *testing.T
	id   string
	port int
	// fail makes the health path answer 500 while the app path stays up.
	fail atomic.Bool

	mu  sync.Mutex
	srv *http.Server
}

func newSwitchable(t *testing.T, id string) *switchable {
	t.Helper()
	b := &switchable{t: t, id: id}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b.port = ln.Addr().(*net.TCPAddr).Port
	b.serve(ln)
	t.Cleanup(b.kill)
	return b
}

func (b *switchable) serve(ln net.Listener) {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		if b.fail.Load() {
			http.Error(w, "failing", http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-Instance", b.id)
		fmt.Fprintln(w, "hello from", b.id)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	b.mu.Lock()
	b.srv = srv
	b.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

// kill stops the backend the hard way: listener and connections closed.
func (b *switchable) kill() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.srv != nil {
		_ = b.srv.Close()
		b.srv = nil
	}
}

// revive serves again on the same port.
func (b *switchable) revive() {
	b.t.Helper()
	var ln net.Listener
	var err error
	for range 100 { // the port may linger briefly after the close
		if ln, err = net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", b.port)); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		b.t.Fatal(err)
	}
	b.serve(ln)
}
