package syslog

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestStrip(t *testing.T) {
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{`<190>Nov 25 09:30:00 orchestry: {"v":1}`, `{"v":1}`, true},
		{`<190>Nov  5 09:30:00 orchestry: {"v":1}`, `{"v":1}`, true},
		{`<0>Jan  1 00:00:00 orchestry: x`, `x`, true},
		{`<190>Nov 25 09:30:00 host-1 orchestry: {}`, `{}`, true},
		{`<190>Nov 25 09:30:00 orchestry: `, ``, true},
		{`{"v":1}`, ``, false},
		{`<1900>Nov 25 09:30:00 orchestry: {}`, ``, false},
		{`<>Nov 25 09:30:00 orchestry: {}`, ``, false},
		{`<190Nov 25 09:30:00 orchestry: {}`, ``, false},
		{`<190>Nov 25 0930:00 orchestry: {}`, ``, false},
		{`<190>Nov 25 09:30:00 other: {}`, ``, false},
		{`<190>Nov 25 09:30:00 host other: {}`, ``, false},
		{`<190>Nov 25 09:30:00 orchestry:{}`, ``, false},
		{`<190>`, ``, false},
		{``, ``, false},
	}
	for _, tt := range tests {
		got, ok := Strip([]byte(tt.in))
		if ok != tt.ok || string(got) != tt.want {
			t.Errorf("Strip(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

// received is what a handler got.
type received struct {
	mu    sync.Mutex
	lines []string
	errs  []error
}

func (r *received) handle(payload []byte, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.errs = append(r.errs, err)
		return
	}
	r.lines = append(r.lines, string(payload))
}

func (r *received) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.lines) + len(r.errs)
}

func TestServe(t *testing.T) {
	l, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var r received
	done := make(chan error, 1)
	go func() { done <- l.Serve(ctx, r.handle) }()

	c, err := net.Dial("udp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	exact := "<190>Nov 25 09:30:00 orchestry: " + strings.Repeat("a", MaxDatagram-len("<190>Nov 25 09:30:00 orchestry: "))
	send := []string{
		`<190>Nov 25 09:30:00 orchestry: {"v":1}`,
		"garbage",
		"<190>Nov 25 09:30:00 orchestry: " + strings.Repeat("x", MaxDatagram), // oversized
		exact, // exactly the limit
		`<190>Nov 25 09:30:00 orchestry: last`,
	}
	for _, s := range send {
		if _, err := c.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for r.count() < len(send) {
		if time.Now().After(deadline) {
			t.Fatalf("received %d of %d datagrams within 5s", r.count(), len(send))
		}
		time.Sleep(10 * time.Millisecond)
	}
	r.mu.Lock()
	if len(r.lines) != 3 || r.lines[0] != `{"v":1}` || !bytes.Equal([]byte(r.lines[1]), []byte(exact[len(exact)-len(r.lines[1]):])) || r.lines[2] != "last" {
		t.Errorf("lines = %.60q", r.lines)
	}
	if len(r.errs) != 2 || !errors.Is(r.errs[0], ErrFrame) || !errors.Is(r.errs[1], ErrOversized) {
		t.Errorf("errors = %v, want frame then oversized", r.errs)
	}
	r.mu.Unlock()

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve = %v after cancel, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return within 5s of cancel")
	}
}
