package probe

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
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
	p.Forget(tg.Addr())
	for i := range 2 {
		if r := p.Check(context.Background(), tg, 2*time.Second); r.OK {
			t.Fatalf("probe %d after listener close succeeded", i)
		}
	}
}

// rawServer is a loopback TCP server whose handler speaks HTTP by hand, to
// close, stall or misbehave where net/http would not. It counts the
// connections it accepted.
type rawServer struct {
	ln      net.Listener
	mu      sync.Mutex
	accepts int
	wg      sync.WaitGroup
}

func newRawServer(t *testing.T, handle func(c net.Conn, br *bufio.Reader)) *rawServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rawServer{ln: ln}
	var conns []net.Conn
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.accepts++
			conns = append(conns, c)
			s.mu.Unlock()
			s.wg.Go(func() {
				defer c.Close()
				handle(c, bufio.NewReader(c))
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

func (s *rawServer) target(hc events.HealthCheck) Target {
	a := s.ln.Addr().(*net.TCPAddr)
	return Target{IP: a.IP.String(), Port: a.Port, Check: hc}
}

func (s *rawServer) conns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accepts
}

// readRequest reads one request (line and headers) or reports false.
func readRequest(br *bufio.Reader) (*http.Request, bool) {
	r, err := http.ReadRequest(br)
	if err != nil {
		return nil, false
	}
	io.Copy(io.Discard, r.Body)
	return r, true
}

// probeN runs n probes of tg and returns their results.
func probeN(p *Prober, tg Target, n int, timeout time.Duration) []Result {
	var rs []Result
	for range n {
		rs = append(rs, p.Check(context.Background(), tg, timeout))
	}
	return rs
}

func allOK(t *testing.T, rs []Result) {
	t.Helper()
	for i, r := range rs {
		if !r.OK {
			t.Fatalf("probe %d failed: %s", i, r.Err)
		}
	}
}

// TestConnectionReuse checks when a probe's connection carries the next
// probe of the target and when it is closed.
func TestConnectionReuse(t *testing.T) {
	tests := []struct {
		name     string
		method   string
		response string // answer to every request
		closes   bool   // the server closes after the response
		conns    int    // connections 3 probes take
	}{
		{"content-length", "", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false, 1},
		{"empty", "", "HTTP/1.1 204 No Content\r\n\r\n", false, 1},
		{"chunked, read to its end", "", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", false, 1},
		{"exactly maxBody", "", "HTTP/1.1 200 OK\r\nContent-Length: 4096\r\n\r\n" + strings.Repeat("x", maxBody), false, 1},
		{"head has no body", http.MethodHead, "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n", false, 1},
		{"informational answer skipped", "", "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false, 1},
		{"connection close", "", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", false, 3},
		{"http/1.0", "", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", false, 3},
		{"body beyond maxBody", "", "HTTP/1.1 200 OK\r\nContent-Length: 4097\r\n\r\n" + strings.Repeat("x", maxBody+1), false, 3},
		{"chunked beyond maxBody", "", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1001\r\n" + strings.Repeat("x", maxBody+1) + "\r\n0\r\n\r\n", false, 3},
		{"unknown length", "", "HTTP/1.1 200 OK\r\n\r\nok", true, 3},
		{"unsolicited bytes after the response", "", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n", false, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
				for {
					if _, ok := readRequest(br); !ok {
						return
					}
					if _, err := io.WriteString(c, tc.response); err != nil || tc.closes {
						return
					}
				}
			})
			p := New("a")
			defer p.Close()
			allOK(t, probeN(p, srv.target(events.HealthCheck{Method: tc.method}), 3, 2*time.Second))
			if got := srv.conns(); got != tc.conns {
				t.Errorf("3 probes took %d connections, want %d", got, tc.conns)
			}
		})
	}
}

// TestIdleCloseRetried: a reused connection the server closed while idle
// fails before any response; the probe dials once more and passes.
func TestIdleCloseRetried(t *testing.T) {
	srv := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
		// One answer per connection, then close it without saying so.
		if _, ok := readRequest(br); ok {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
			time.Sleep(10 * time.Millisecond)
		}
	})
	p := New("a")
	defer p.Close()
	tg := srv.target(events.HealthCheck{})
	for i := range 3 {
		allOK(t, probeN(p, tg, 1, 2*time.Second))
		if i < 2 {
			time.Sleep(50 * time.Millisecond) // the server has closed
		}
	}
	if got := srv.conns(); got != 3 {
		t.Errorf("3 probes took %d connections, want 3", got)
	}
}

// TestFreshConnFailureNotRetried: a new connection that fails is the
// probe's failure, not a reason to dial again.
func TestFreshConnFailureNotRetried(t *testing.T) {
	srv := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
		readRequest(br) // and close without an answer
	})
	p := New("a")
	defer p.Close()
	r := p.Check(context.Background(), srv.target(events.HealthCheck{}), 2*time.Second)
	if r.OK {
		t.Fatal("probe without an answer succeeded")
	}
	if !strings.Contains(r.Err, "EOF") {
		t.Errorf("err = %q, want EOF", r.Err)
	}
	if got := srv.conns(); got != 1 {
		t.Errorf("probe took %d connections, want 1 (no retry)", got)
	}
}

// TestReusedConnTimeoutNotRetried: a reused connection whose answer does
// not come in time fails the probe; only a failure before any response
// byte that is not the deadline is retried.
func TestReusedConnTimeoutNotRetried(t *testing.T) {
	srv := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
		if _, ok := readRequest(br); ok {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
		}
		readRequest(br)
		time.Sleep(time.Second) // stall the second one
	})
	p := New("a")
	defer p.Close()
	tg := srv.target(events.HealthCheck{})
	allOK(t, probeN(p, tg, 1, 2*time.Second))
	r := p.Check(context.Background(), tg, 100*time.Millisecond)
	if r.OK || !strings.Contains(r.Err, "timed out after 100ms") {
		t.Fatalf("stalled probe: ok %v, err %q; want a timeout", r.OK, r.Err)
	}
	if got := srv.conns(); got != 1 {
		t.Errorf("probes took %d connections, want 1", got)
	}
}

// TestPartialResponseNotRetried: a reused connection that breaks after
// part of the response arrived fails the probe.
func TestPartialResponseNotRetried(t *testing.T) {
	srv := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
		if _, ok := readRequest(br); ok {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
		}
		if _, ok := readRequest(br); ok {
			io.WriteString(c, "HTTP/1.1 200 O")
		}
	})
	p := New("a")
	defer p.Close()
	tg := srv.target(events.HealthCheck{})
	allOK(t, probeN(p, tg, 1, 2*time.Second))
	if r := p.Check(context.Background(), tg, 2*time.Second); r.OK {
		t.Fatal("probe with a cut response succeeded")
	}
	if got := srv.conns(); got != 1 {
		t.Errorf("probes took %d connections, want 1", got)
	}
}

// TestRequestBytes checks the request a probe sends, header by header.
func TestRequestBytes(t *testing.T) {
	reqs := make(chan *http.Request, 4)
	srv := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
		for {
			r, ok := readRequest(br)
			if !ok {
				return
			}
			reqs <- r
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
		}
	})
	p := New("replica-b")
	defer p.Close()
	tg := srv.target(events.HealthCheck{Method: http.MethodPost, Path: "/healthz?deep=1",
		Headers: []events.Header{{Name: "host", Value: "web.internal"}, {Name: "X-Token", Value: "abc"}}})
	allOK(t, probeN(p, tg, 2, 2*time.Second))
	for range 2 {
		r := <-reqs
		if r.Method != http.MethodPost || r.RequestURI != "/healthz?deep=1" || r.Host != "web.internal" {
			t.Errorf("request %s %s Host %s", r.Method, r.RequestURI, r.Host)
		}
		want := http.Header{
			"User-Agent":         {"orchestry-health"},
			"X-Orchestry-Prober": {"replica-b"},
			"X-Token":            {"abc"},
			"Content-Length":     {"0"},
		}
		if !reflect.DeepEqual(r.Header, want) {
			t.Errorf("headers %v, want %v", r.Header, want)
		}
	}
	// Without a Host header the address is the Host.
	tg.Check = events.HealthCheck{}
	allOK(t, probeN(p, tg, 1, 2*time.Second))
	if r := <-reqs; r.Host != tg.Addr() || r.Method != http.MethodGet || r.RequestURI != "/" {
		t.Errorf("default request %s %s Host %s", r.Method, r.RequestURI, r.Host)
	}
}

// TestOverlappingProbes: two probes of the same target at once each use
// their own connection; one is kept afterwards.
func TestOverlappingProbes(t *testing.T) {
	srv := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
		for {
			if _, ok := readRequest(br); !ok {
				return
			}
			time.Sleep(100 * time.Millisecond)
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
		}
	})
	p := New("a")
	defer p.Close()
	tg := srv.target(events.HealthCheck{})
	var wg sync.WaitGroup
	rs := make([]Result, 2)
	for i := range rs {
		wg.Go(func() { rs[i] = p.Check(context.Background(), tg, 2*time.Second) })
	}
	wg.Wait()
	allOK(t, rs)
	allOK(t, probeN(p, tg, 2, 2*time.Second))
	if got := srv.conns(); got != 2 {
		t.Errorf("probes took %d connections, want 2", got)
	}
}

// TestForgetSweepClose checks that a target's connection is closed by
// Forget, by idling past IdleTimeout and by Close.
func TestForgetSweepClose(t *testing.T) {
	closed := make(chan struct{}, 8)
	srv := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
		for {
			if _, ok := readRequest(br); !ok {
				closed <- struct{}{}
				return
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
		}
	})
	waitClosed := func(what string) {
		t.Helper()
		select {
		case <-closed:
		case <-time.After(2 * time.Second):
			t.Fatalf("%s did not close the connection", what)
		}
	}
	entries := func(p *Prober) int {
		p.mu.Lock()
		defer p.mu.Unlock()
		n := 0
		for _, es := range p.conns {
			n += len(es)
		}
		return n
	}
	p := New("a")
	defer p.Close()
	tg := srv.target(events.HealthCheck{})
	allOK(t, probeN(p, tg, 1, 2*time.Second))
	p.Forget(tg.Addr())
	waitClosed("Forget")
	if n := entries(p); n != 0 {
		t.Errorf("%d entries after Forget", n)
	}

	allOK(t, probeN(p, tg, 1, 2*time.Second))
	other := tg
	other.Check.Path = "/other"
	allOK(t, probeN(p, other, 1, 2*time.Second))
	p.mu.Lock()
	for _, es := range p.conns {
		for _, e := range es {
			if e.path == "/" {
				e.used = time.Now().Add(-IdleTimeout - time.Second)
			}
		}
	}
	p.swept = time.Time{}
	p.mu.Unlock()
	allOK(t, probeN(p, other, 1, 2*time.Second)) // sweeps
	waitClosed("the idle sweep")
	if n := entries(p); n != 1 {
		t.Errorf("%d entries after the sweep, want 1", n)
	}

	p.Close()
	waitClosed("Close")
	if n := entries(p); n != 0 {
		t.Errorf("%d entries after Close", n)
	}
	// Probes after Close work and keep nothing.
	allOK(t, probeN(p, tg, 1, 2*time.Second))
	waitClosed("a probe after Close")
	if got := srv.conns(); got != 4 {
		t.Errorf("probes took %d connections, want 4", got)
	}
}

// TestCancelAborts: ending ctx aborts a probe at once, not at its timeout.
func TestCancelAborts(t *testing.T) {
	srv := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
		readRequest(br)
		time.Sleep(2 * time.Second)
	})
	p := New("a")
	defer p.Close()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	r := p.Check(ctx, srv.target(events.HealthCheck{}), 5*time.Second)
	if r.OK || !strings.Contains(r.Err, "context canceled") {
		t.Fatalf("ok %v, err %q; want context canceled", r.OK, r.Err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("cancelled probe took %s", d)
	}
}
