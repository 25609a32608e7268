package events_test

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/orchestry/orchestry/pkg/events"
	"github.com/orchestry/orchestry/pkg/events/eventstest"
)

// blackHole forwards TCP connections to target until frozen; then it keeps
// them open but passes nothing, as a server that died with its host (a
// killed container) looks to its clients: no close, no answer.
type blackHole struct {
	ln     net.Listener
	mu     sync.Mutex
	frozen bool
}

func newBlackHole(t *testing.T, target string) *blackHole {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &blackHole{ln: ln}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				_ = c.Close()
				continue
			}
			t.Cleanup(func() { _ = c.Close(); _ = s.Close() })
			go b.pipe(c, s)
			go b.pipe(s, c)
		}
	}()
	return b
}

func (b *blackHole) pipe(dst io.Writer, src io.Reader) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if err != nil {
			return
		}
		b.mu.Lock()
		frozen := b.frozen
		b.mu.Unlock()
		if frozen {
			continue // swallowed
		}
		if _, err := dst.Write(buf[:n]); err != nil {
			return
		}
	}
}

func (b *blackHole) freeze() { b.mu.Lock(); b.frozen = true; b.mu.Unlock() }

// TestConnectLeavesAServerThatStopsAnswering: a client whose server stops
// answering without closing the connection notices through its pings,
// reports the loss, and reconnects to another server of its list. With
// the library's default pings (2 min, 2 outstanding) it would stay on the
// dead connection for minutes.
func TestConnectLeavesAServerThatStopsAnswering(t *testing.T) {
	srv := eventstest.Start(t, "")
	hole := newBlackHole(t, srv.Addr().String())
	type change struct {
		event, server string
	}
	changes := make(chan change, 8)
	c := events.NATSClient{URL: "nats://" + hole.ln.Addr().String() + "," + srv.ClientURL()}
	nc, err := c.Connect("test", nats.DontRandomize(), nats.ReconnectWait(100*time.Millisecond),
		events.ReportConnection(func(event, server string, _ error) { changes <- change{event, server} }))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if got := nc.ConnectedAddr(); got != hole.ln.Addr().String() {
		t.Fatalf("connected to %s, want the first server of the list %s", got, hole.ln.Addr())
	}
	hole.freeze()
	deadline := time.After(time.Minute) // the default pings would take 4
	var seen []change
	for {
		select {
		case ch := <-changes:
			seen = append(seen, ch)
			if ch.event == "reconnected" {
				if nc.ConnectedAddr() != srv.Addr().String() {
					t.Fatalf("reconnected to %s, want %s", nc.ConnectedAddr(), srv.Addr())
				}
				if seen[0].event != "disconnected" {
					t.Fatalf("connection changes %v: the loss was not reported first", seen)
				}
				return
			}
		case <-deadline:
			t.Fatalf("still on the silent server after a minute; changes %v", seen)
		}
	}
}
