package probe

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orchestry/orchestry/pkg/events"
)

// target points a Target at an httptest server.
func target(t *testing.T, srv *httptest.Server, hc events.HealthCheck) Target {
	t.Helper()
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(u.Port())
	return Target{IP: u.Hostname(), Port: port, Check: hc}
}

// closedPort returns a loopback port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

func TestCheck(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]http.Header{}
	hosts := map[string]string{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[r.URL.Path] = r.Header.Clone()
		hosts[r.URL.Path] = r.Host
		mu.Unlock()
		switch r.URL.Path {
		case "/fail":
			w.WriteHeader(http.StatusInternalServerError)
		case "/teapot":
			w.WriteHeader(http.StatusTeapot)
		case "/slow":
			time.Sleep(500 * time.Millisecond)
		case "/redirect":
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		case "/big":
			w.Write([]byte(strings.Repeat("x", 1<<20)))
		case "/status":
			w.Write([]byte(`{"db":"ok","status":"up"}`))
		case "/late":
			w.Write([]byte(strings.Repeat("x", 8<<10) + "status=up"))
		}
	}))
	defer srv.Close()
	p := New("replica-a")
	defer p.Close()
	closed := closedPort(t)

	tests := []struct {
		name    string
		check   events.HealthCheck
		port    int // overrides the server's port when set
		timeout time.Duration
		ok      bool
		errHas  string
	}{
		{name: "200 ok", ok: true},
		{name: "500 fails", check: events.HealthCheck{Path: "/fail"}, errHas: "unexpected status 500"},
		{name: "expected codes list", check: events.HealthCheck{Path: "/teapot", ExpectedStatusCodes: []int{418}}, ok: true},
		{name: "code not in list", check: events.HealthCheck{Path: "/", ExpectedStatusCodes: []int{204}}, errHas: "unexpected status 200"},
		{name: "redirect is not followed and counts as 3xx", check: events.HealthCheck{Path: "/redirect"}, ok: true},
		{name: "large body is cut", check: events.HealthCheck{Path: "/big"}, ok: true},
		{name: "head method", check: events.HealthCheck{Path: "/head", Method: http.MethodHead}, ok: true},
		{name: "headers sent", check: events.HealthCheck{Path: "/hdr", Headers: []events.Header{{Name: "Host", Value: "app.example.com"}, {Name: "X-Check", Value: "yes"}}}, ok: true},
		{name: "timeout", check: events.HealthCheck{Path: "/slow"}, timeout: 100 * time.Millisecond, errHas: "timed out"},
		{name: "http closed port", port: closed, errHas: "refused"},
		{name: "health check port overrides instance port", port: closed, check: events.HealthCheck{Path: "/", Port: target(t, srv, events.HealthCheck{}).Port}, ok: true},
		{name: "body holds the expected text", check: events.HealthCheck{Path: "/status", ExpectedBody: `"status":"up"`}, ok: true},
		{name: "body lacks the expected text", check: events.HealthCheck{Path: "/status", ExpectedBody: `"status":"down"`}, errHas: "lacks the expected text"},
		{name: "expected text beyond the first 4 KiB", check: events.HealthCheck{Path: "/late", ExpectedBody: "status=up"}, errHas: "lacks the expected text"},
		{name: "tcp open", check: events.HealthCheck{Protocol: "TCP"}, ok: true},
		{name: "tcp closed", check: events.HealthCheck{Protocol: "TCP"}, port: closed, errHas: "refused"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tg := target(t, srv, tc.check)
			if tc.port != 0 {
				tg.Port = tc.port
			}
			timeout := tc.timeout
			if timeout == 0 {
				timeout = 2 * time.Second
			}
			r := p.Check(context.Background(), tg, timeout)
			if r.OK != tc.ok {
				t.Fatalf("ok = %v, want %v (err %q)", r.OK, tc.ok, r.Err)
			}
			if !tc.ok && !strings.Contains(r.Err, tc.errHas) {
				t.Fatalf("err = %q, want it to contain %q", r.Err, tc.errHas)
			}
			if tc.ok && r.Err != "" {
				t.Fatalf("ok with err %q", r.Err)
			}
		})
	}

	mu.Lock()
	defer mu.Unlock()
	if got := hosts["/hdr"]; got != "app.example.com" {
		t.Errorf("Host = %q, want app.example.com", got)
	}
	if got := seen["/hdr"].Get("X-Check"); got != "yes" {
		t.Errorf("X-Check = %q, want yes", got)
	}
	if got := seen["/hdr"].Get(ProberHeader); got != "replica-a" {
		t.Errorf("%s = %q, want replica-a", ProberHeader, got)
	}
}

// TestKilledServerAfterKeepAlive checks that a warm pooled connection does
// not hide a backend that went away.
func TestKilledServerAfterKeepAlive(t *testing.T) {
	var mu sync.Mutex
	conns := map[string]bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		conns[r.RemoteAddr] = true
		mu.Unlock()
	}))
	p := New("a")
	defer p.Close()
	tg := target(t, srv, events.HealthCheck{})
	for i := range 3 {
		if r := p.Check(context.Background(), tg, 2*time.Second); !r.OK {
			t.Fatalf("probe %d: %s", i, r.Err)
		}
	}
	mu.Lock()
	if len(conns) != 1 {
		t.Errorf("3 probes used %d connections, want 1 (keep-alive)", len(conns))
	}
	mu.Unlock()
	srv.Close()
	if r := p.Check(context.Background(), tg, 2*time.Second); r.OK {
		t.Fatal("probe of a killed server succeeded")
	}
}

// TestListenerClosedConnLingers checks the case keep-alive could hide: the
// backend stopped accepting connections but an old one is still open. Once
// the pooled connections of the address are dropped (as after any failed
// probe), every probe must dial and be refused.
func TestListenerClosedConnLingers(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	p := New("a")
	defer p.Close()
	tg := target(t, srv, events.HealthCheck{})
	if r := p.Check(context.Background(), tg, 2*time.Second); !r.OK {
		t.Fatalf("warm-up: %s", r.Err)
	}
	srv.Listener.Close()
	// Close the pooled connection from the prober side as a failed probe
	// would, then the next probe must dial and be refused.
	p.forget(tg.Addr())
	for i := range 2 {
		if r := p.Check(context.Background(), tg, 2*time.Second); r.OK {
			t.Fatalf("probe %d after listener close succeeded", i)
		}
	}
}
