// Package probe runs one active health check (HTTP or TCP) of one instance
// with its own deadline and reports the latency and, on failure, why.
package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
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
// Connection reuse: an HTTP probe keeps its connection open for the next
// probe of the same target (address and check), so a steady probe costs
// one request on a warm connection rather than a TCP handshake per period.
// The probe runs entirely on the calling goroutine: the request (prebuilt
// once per target with net/http's serializer) is written and the response
// read with http.ReadResponse under the probe's deadline; there is no
// http.Transport and no goroutine per connection. See http.go.
//
// Keep-alive must not hide failures. A reused connection the backend has
// since closed fails before any response byte; the probe then retries once
// on a fresh dial, which a dead backend refuses. Any other failure is the
// probe's. What keep-alive could still hide is a backend that stopped
// accepting new connections while an old one lingers, so after any failed
// probe the Prober closes every idle connection it holds to that address:
// the next probe must dial afresh and prove the backend accepts
// connections, and a flapping target never keeps a half-dead connection.
//
// Memory is bounded by the targets: a connection (and its prebuilt
// request) is dropped by Forget, when it has been idle for IdleTimeout,
// and by Close.
type Prober struct {
	name   string
	dialer net.Dialer

	mu     sync.Mutex
	conns  map[addrKey][]*entry
	swept  time.Time
	closed bool
}

// IdleTimeout is how long a target's connection and prebuilt request are
// kept without a probe (a target with a longer period dials every probe).
const IdleTimeout = 90 * time.Second

// New returns a Prober that names itself name in the ProberHeader of every
// HTTP probe.
func New(name string) *Prober {
	return &Prober{
		name:   name,
		dialer: net.Dialer{KeepAlive: 30 * time.Second},
		conns:  map[addrKey][]*entry{},
		swept:  time.Now(),
	}
}

// Close closes every idle connection and forgets every target. Probes
// still running close their connections when they end; probes after Close
// work but keep no connection.
func (p *Prober) Close() {
	p.mu.Lock()
	p.closed = true
	var idle []net.Conn
	for k, es := range p.conns {
		idle = drop(idle, es)
		delete(p.conns, k)
	}
	p.mu.Unlock()
	closeAll(idle)
}

// Forget drops every connection and prebuilt request of the targets at
// addr (host:port, as Target.Addr), for a target that is gone. A probe of
// addr still running closes its connection when it ends.
func (p *Prober) Forget(addr string) {
	k, ok := parseAddr(addr)
	if !ok {
		return
	}
	p.mu.Lock()
	idle := drop(nil, p.conns[k])
	delete(p.conns, k)
	p.mu.Unlock()
	closeAll(idle)
}

// Check runs one check of t, bounded by timeout (and ctx).
func (p *Prober) Check(ctx context.Context, t Target, timeout time.Duration) Result {
	start := time.Now()
	var err error
	if strings.EqualFold(t.Check.Protocol, "TCP") {
		err = p.tcp(ctx, t, timeout)
	} else {
		deadline := start.Add(timeout)
		if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
			deadline = d
		}
		err = p.http(ctx, t, deadline, timeout)
	}
	r := Result{OK: err == nil, Latency: time.Since(start)}
	if err != nil {
		r.Err = clip(err.Error(), maxErr)
		p.closeIdle(t.key())
	}
	return r
}

func (p *Prober) tcp(ctx context.Context, t Target, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c, err := p.dialer.DialContext(ctx, "tcp", t.Addr())
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("timed out after %s", timeout)
		}
		return fmt.Errorf("tcp connect: %w", err)
	}
	return c.Close()
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
