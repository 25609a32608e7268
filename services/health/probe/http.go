package probe

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/orchestry/orchestry/pkg/events"
)

// sweepEvery is how often (at most) a probe looks for targets idle longer
// than IdleTimeout.
const sweepEvery = 10 * time.Second

// max1xx bounds the informational (1xx) responses skipped before the final
// one, as net/http's Transport does.
const max1xx = 5

// addrKey is the address a check connects to.
type addrKey struct {
	ip   string
	port int
}

func (t Target) key() addrKey {
	port := t.Port
	if t.Check.Port != 0 {
		port = t.Check.Port
	}
	return addrKey{t.IP, port}
}

func parseAddr(addr string) (addrKey, bool) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addrKey{}, false
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		return addrKey{}, false
	}
	return addrKey{host, n}, true
}

// entry is one target's HTTP check at an address: its prebuilt request and
// its idle connection, if any. A probe takes the connection out while it
// runs (so two probes never share one) and puts it back when it may be
// reused.
type entry struct {
	// The request fields the entry was built for.
	method, path string
	headers      []events.Header

	addr string        // host:port to dial
	req  []byte        // the serialized request
	rreq *http.Request // for http.ReadResponse (only Method is read)

	idle net.Conn  // guarded by Prober.mu
	used time.Time // last checkout or checkin; guarded by Prober.mu
	dead bool      // dropped from the Prober; guarded by Prober.mu
}

func (e *entry) matches(method, path string, headers []events.Header) bool {
	return e.method == method && e.path == path && slices.Equal(e.headers, headers)
}

// build serializes the request of a check with net/http's own writer (the
// bytes http.Transport would send with compression disabled).
func (p *Prober) build(addr, method, path string, headers []events.Header) (*entry, error) {
	req, err := http.NewRequest(method, "http://"+addr+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", "orchestry-health")
	req.Header.Set(ProberHeader, p.name)
	for _, h := range headers {
		if strings.EqualFold(h.Name, "Host") {
			req.Host = h.Value
			continue
		}
		req.Header.Set(h.Name, h.Value)
	}
	var b bytes.Buffer
	if err := req.Write(&b); err != nil {
		return nil, err
	}
	return &entry{
		method: method, path: path, headers: slices.Clone(headers),
		addr: addr, req: b.Bytes(), rreq: &http.Request{Method: method},
	}, nil
}

// checkout finds (or builds) the entry of t's check and takes its idle
// connection, if any.
func (p *Prober) checkout(t Target, method, path string) (*entry, net.Conn, error) {
	k := t.key()
	hs := t.Check.Headers
	p.mu.Lock()
	defer p.mu.Unlock()
	var e *entry
	for _, x := range p.conns[k] {
		if x.matches(method, path, hs) {
			e = x
			break
		}
	}
	if e == nil {
		var err error
		if e, err = p.build(t.Addr(), method, path, hs); err != nil {
			return nil, nil, err
		}
		if !p.closed {
			p.conns[k] = append(p.conns[k], e)
		} else {
			e.dead = true
		}
	}
	c := e.idle
	e.idle = nil
	e.used = time.Now()
	return e, c, nil
}

// checkin puts c back as e's idle connection, or closes it when e was
// dropped meanwhile (or already has one: an overlapping probe of the same
// target). It also drops the targets idle longer than IdleTimeout, at
// most every sweepEvery.
func (p *Prober) checkin(e *entry, c net.Conn) {
	now := time.Now()
	var idle []net.Conn
	p.mu.Lock()
	e.used = now
	if !e.dead && e.idle == nil {
		e.idle, c = c, nil
	}
	if now.Sub(p.swept) >= sweepEvery {
		p.swept = now
		idle = p.sweep(now.Add(-IdleTimeout))
	}
	p.mu.Unlock()
	if c != nil {
		c.Close()
	}
	closeAll(idle)
}

// sweep drops the entries unused since before and returns their idle
// connections. p.mu must be held.
func (p *Prober) sweep(before time.Time) []net.Conn {
	var idle []net.Conn
	for k, es := range p.conns {
		keep := es[:0]
		for _, e := range es {
			if e.used.Before(before) {
				idle = drop(idle, []*entry{e})
				continue
			}
			keep = append(keep, e)
		}
		if len(keep) == 0 {
			delete(p.conns, k)
			continue
		}
		clear(es[len(keep):])
		p.conns[k] = keep
	}
	return idle
}

// closeIdle closes the idle connections to k (after a failed probe), so
// the next probe of each target there dials afresh.
func (p *Prober) closeIdle(k addrKey) {
	var idle []net.Conn
	p.mu.Lock()
	for _, e := range p.conns[k] {
		if e.idle != nil {
			idle = append(idle, e.idle)
			e.idle = nil
		}
	}
	p.mu.Unlock()
	closeAll(idle)
}

// drop marks es dropped and appends their idle connections to idle.
// p.mu must be held.
func drop(idle []net.Conn, es []*entry) []net.Conn {
	for _, e := range es {
		e.dead = true
		if e.idle != nil {
			idle = append(idle, e.idle)
			e.idle = nil
		}
	}
	return idle
}

func closeAll(cs []net.Conn) {
	for _, c := range cs {
		c.Close()
	}
}

// scratch is a probe's read buffer and body buffer, pooled: a connection
// at rest holds none.
type scratch struct {
	br   *bufio.Reader
	body [maxBody]byte
}

var scratches = sync.Pool{New: func() any {
	return &scratch{br: bufio.NewReaderSize(nil, 4<<10)}
}}

// answer is what one exchange on a connection got.
type answer struct {
	status int
	body   []byte // the first maxBody bytes at most; in the scratch buffer
	// bodyErr is an error reading the body (after the status arrived).
	bodyErr error
	// reuse: the response was read completely and the connection may
	// carry the next probe.
	reuse bool
}

// errBeforeResponse marks a failure before any byte of a response
// arrived: on a reused connection, the peer most likely closed it while
// idle.
type errBeforeResponse struct{ err error }

func (e errBeforeResponse) Error() string { return e.err.Error() }
func (e errBeforeResponse) Unwrap() error { return e.err }

func (p *Prober) http(ctx context.Context, t Target, deadline time.Time, timeout time.Duration) error {
	hc := t.Check
	method := hc.Method
	if method == "" {
		method = http.MethodGet
	}
	path := hc.Path
	if path == "" {
		path = "/"
	}
	fail := func(err error) error {
		switch {
		case isTimeout(err) && !time.Now().Before(deadline):
			return fmt.Errorf("timed out after %s", timeout)
		case ctx.Err() != nil:
			return fmt.Errorf("http %s %s: %w", method, path, ctx.Err())
		}
		return fmt.Errorf("http %s %s: %w", method, path, err)
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	e, c, err := p.checkout(t, method, path)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	s := scratches.Get().(*scratch)
	defer scratches.Put(s)
	var a answer
	for reused := c != nil; ; reused = false {
		if c == nil {
			if c, err = p.dial(ctx, e.addr, deadline); err != nil {
				return fail(err)
			}
		}
		a, err = exchange(ctx, c, e, s, deadline)
		if err == nil {
			break
		}
		c.Close()
		c = nil
		var before errBeforeResponse
		if reused && errors.As(err, &before) && !isTimeout(err) && ctx.Err() == nil && time.Now().Before(deadline) {
			continue // the peer closed the idle connection: dial once
		}
		return fail(err)
	}
	if a.reuse {
		p.checkin(e, c)
	} else {
		c.Close()
	}
	if !expected(hc.ExpectedStatusCodes, a.status) {
		return fmt.Errorf("http %s %s: unexpected status %d", method, path, a.status)
	}
	if a.bodyErr != nil {
		return fail(fmt.Errorf("read body: %w", a.bodyErr))
	}
	if hc.ExpectedBody != "" && !bytes.Contains(a.body, []byte(hc.ExpectedBody)) {
		return fmt.Errorf("http %s %s: body (first %d bytes) lacks the expected text", method, path, maxBody)
	}
	return nil
}

func (p *Prober) dial(ctx context.Context, addr string, deadline time.Time) (net.Conn, error) {
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	return p.dialer.DialContext(ctx, "tcp", addr)
}

// aLongTimeAgo is a deadline in the past, to abort blocked I/O.
var aLongTimeAgo = time.Unix(1, 0)

// exchange writes e's request on c and reads the response (its body up to
// maxBody), all before deadline and on this goroutine; ctx ending aborts
// it. An error (other than reading the body) means no usable response;
// errBeforeResponse marks one before any response byte.
func exchange(ctx context.Context, c net.Conn, e *entry, s *scratch, deadline time.Time) (a answer, err error) {
	if err := c.SetDeadline(deadline); err != nil {
		return a, errBeforeResponse{err}
	}
	if ctx.Done() != nil {
		stop := context.AfterFunc(ctx, func() { c.SetDeadline(aLongTimeAgo) })
		defer func() {
			if !stop() {
				a.reuse = false // the deadline was cut short
			}
		}()
	}
	if _, err := c.Write(e.req); err != nil {
		return a, errBeforeResponse{err}
	}
	br := s.br
	br.Reset(c)
	defer br.Reset(nil)
	if _, err := br.Peek(1); err != nil {
		return a, errBeforeResponse{err}
	}
	var resp *http.Response
	for n := 0; ; n++ {
		if resp, err = http.ReadResponse(br, e.rreq); err != nil {
			return a, err
		}
		// Skip informational answers (not 101, which ends HTTP on
		// the connection) as http.Transport does.
		if resp.StatusCode < 100 || resp.StatusCode > 199 || resp.StatusCode == http.StatusSwitchingProtocols {
			break
		}
		if n == max1xx {
			return a, errors.New("too many 1xx informational responses")
		}
	}
	a.status = resp.StatusCode
	// Read the body into the scratch buffer, at most maxBody. Whether it
	// ended (EOF) there decides whether the connection can be reused; a
	// longer or unfinished body is left unread and the connection closed
	// (closing the body would read it to its end).
	n, complete := 0, false
	for n < len(s.body) {
		m, err := resp.Body.Read(s.body[n:])
		n += m
		if err == io.EOF {
			complete = true
			break
		}
		if err != nil {
			a.bodyErr = err
			break
		}
	}
	a.body = s.body[:n]
	a.reuse = complete && !resp.Close && resp.StatusCode != http.StatusSwitchingProtocols && br.Buffered() == 0
	return a, nil
}

// isTimeout reports whether err is a deadline or timeout error.
func isTimeout(err error) bool {
	if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
