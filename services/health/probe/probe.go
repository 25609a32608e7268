// Package probe runs one active health check (HTTP or TCP) of one instance
// with its own deadline and reports the latency and, on failure, why.
package probe

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/orchestry/orchestry/pkg/events"
)

// ProberHeader names the replica that sent an HTTP probe, so backend logs
// (and tests) can tell which health replica probed them.
const ProberHeader = "X-Orchestry-Prober"

// maxBody is how much of a response body a probe reads at most.
const maxBody = 4 << 10

// maxErr bounds the error text of a result (HealthState.LastError allows
// 1024 characters).
const maxErr = 512

// Target is one instance to check and how.
type Target struct {
	IP   string
	Port int
	// Check is the app's health check; the zero value is an HTTP GET of
	// "/" on the instance port expecting 200-399.
	Check events.HealthCheck
}

// Addr is the host:port the check connects to: the check's port if set,
// else the instance's.
func (t Target) Addr() string {
	port := t.Port
	if t.Check.Port != 0 {
		port = t.Check.Port
	}
	return net.JoinHostPort(t.IP, strconv.Itoa(port))
}

// Result is the outcome of one check.
type Result struct {
	OK      bool
	Latency time.Duration
	// Err says why the check failed; empty when OK.
	Err string
}

// Prober runs checks. It is safe for concurrent use; one Prober serves
// every target.
//
// Connection reuse: HTTP probes share one http.Transport with keep-alive,
// so a steady probe costs one request on a warm connection rather than a
// TCP (and TLS) handshake per period. Go's transport already drops a pooled
// connection the peer closed, and when a request on a reused connection
// fails before any response it retries on a fresh dial, which a dead
// backend refuses, so "refused" and "reset" surface as failures. What keep-
// alive could still hide is a backend that stopped accepting new
// connections while an old one lingers. So after any failed probe the
// Prober closes every pooled connection it dialled to that address: the
// next probe must dial afresh and prove the backend accepts connections,
// and a flapping target never keeps a half-dead connection around.
type Prober struct {
	name   string
	dialer net.Dialer
	client *http.Client

	mu    sync.Mutex
	conns map[string]map[*trackedConn]struct{}
}

// New returns a Prober that names itself name in the ProberHeader of every
// HTTP probe.
func New(name string) *Prober {
	p := &Prober{name: name, conns: map[string]map[*trackedConn]struct{}{}}
	p.dialer = net.Dialer{KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		DialContext: p.dial,
		// No global cap: one idle connection per target address at most
		// (MaxIdleConnsPerHost), so the pool is bounded by the targets.
		// A global cap below the target count makes the pool evict in
		// probe order, so every probe would dial afresh (measured with
		// cmd/probebench: at 5,000 targets and a cap of 4,096, 4,000 new
		// connections a second and five times the CPU per probe).
		MaxIdleConns:          0,
		MaxIdleConnsPerHost:   1,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 0, // bounded by each probe's context
		DisableCompression:    true,
	}
	p.client = &http.Client{
		Transport: tr,
		// A redirect is an answer: it is judged by its status code, not
		// followed to wherever it points.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return p
}

// Close closes every idle pooled connection.
func (p *Prober) Close() { p.client.CloseIdleConnections() }

// Check runs one check of t, bounded by timeout (and ctx).
func (p *Prober) Check(ctx context.Context, t Target, timeout time.Duration) Result {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	var err error
	if strings.EqualFold(t.Check.Protocol, "TCP") {
		err = p.tcp(ctx, t)
	} else {
		err = p.http(ctx, t)
	}
	r := Result{OK: err == nil, Latency: time.Since(start)}
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("timed out after %s", timeout)
		}
		r.Err = clip(err.Error(), maxErr)
		p.forget(t.Addr())
	}
	return r
}

func (p *Prober) tcp(ctx context.Context, t Target) error {
	c, err := p.dialer.DialContext(ctx, "tcp", t.Addr())
	if err != nil {
		return fmt.Errorf("tcp connect: %w", err)
	}
	return c.Close()
}

func (p *Prober) http(ctx context.Context, t Target) error {
	hc := t.Check
	method := hc.Method
	if method == "" {
		method = http.MethodGet
	}
	path := hc.Path
	if path == "" {
		path = "/"
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+t.Addr()+path, nil)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("User-Agent", "orchestry-health")
	req.Header.Set(ProberHeader, p.name)
	for _, h := range hc.Headers {
		if strings.EqualFold(h.Name, "Host") {
			req.Host = h.Value
			continue
		}
		req.Header.Set(h.Name, h.Value)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		var ue interface{ Unwrap() error }
		if errors.As(err, &ue) {
			err = ue.Unwrap() // drop the repeated method and URL
		}
		return fmt.Errorf("http %s %s: %w", method, path, err)
	}
	var body []byte
	var rerr error
	if hc.ExpectedBody != "" {
		body, rerr = io.ReadAll(io.LimitReader(resp.Body, maxBody))
	} else {
		_, rerr = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
	}
	resp.Body.Close()
	if !expected(hc.ExpectedStatusCodes, resp.StatusCode) {
		return fmt.Errorf("http %s %s: unexpected status %d", method, path, resp.StatusCode)
	}
	if rerr != nil {
		return fmt.Errorf("http %s %s: read body: %w", method, path, rerr)
	}
	if hc.ExpectedBody != "" && !bytes.Contains(body, []byte(hc.ExpectedBody)) {
		return fmt.Errorf("http %s %s: body (first %d bytes) lacks the expected text", method, path, maxBody)
	}
	return nil
}

// expected reports whether code is one of codes, or 200-399 when codes is
// empty.
func expected(codes []int, code int) bool {
	if len(codes) == 0 {
		return code >= 200 && code < 400
	}
	return slices.Contains(codes, code)
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// dial opens a connection for the transport and remembers it by address,
// so forget can close it after a failed probe.
func (p *Prober) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := p.dialer.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, p: p, addr: addr}
	p.mu.Lock()
	set := p.conns[addr]
	if set == nil {
		set = map[*trackedConn]struct{}{}
		p.conns[addr] = set
	}
	set[tc] = struct{}{}
	p.mu.Unlock()
	return tc, nil
}

// forget closes every connection dialled to addr. Only one probe of a
// target runs at a time, so these are idle pooled connections (or belong
// to another target on the same address, whose probe then fails once and
// redials).
func (p *Prober) forget(addr string) {
	p.mu.Lock()
	set := p.conns[addr]
	delete(p.conns, addr)
	p.mu.Unlock()
	for c := range set {
		c.Conn.Close()
	}
}

// trackedConn removes itself from the Prober's registry when closed.
type trackedConn struct {
	net.Conn
	p    *Prober
	addr string
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.p.mu.Lock()
		if set := c.p.conns[c.addr]; set != nil {
			delete(set, c)
			if len(set) == 0 {
				delete(c.p.conns, c.addr)
			}
		}
		c.p.mu.Unlock()
	})
	return c.Conn.Close()
}
