// Package syslog receives NGINX access log lines sent over UDP in the BSD
// syslog framing NGINX writes (RFC 3164 without hostname):
//
//	<190>Nov 25 09:30:00 orchestry: {"v":1,...}
//
// It reads each datagram into one fixed buffer, refuses datagrams that are
// too long or not framed that way, and hands the message after the tag on.
package syslog

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
)

// MaxDatagram is the longest datagram accepted, header included.
const MaxDatagram = 8 << 10

// Tag is the syslog tag NGINX is configured with (tag=orchestry).
const Tag = "orchestry"

// Reasons a datagram is dropped.
var (
	// ErrOversized: the datagram is longer than MaxDatagram.
	ErrOversized = errors.New("syslog: datagram longer than 8 KiB")
	// ErrFrame: the datagram is not "<PRI>TIMESTAMP [HOST ]orchestry: MSG".
	ErrFrame = errors.New("syslog: not an orchestry syslog message")
)

// Handler receives each datagram: the message after the syslog header, or
// the reason it was dropped (payload then nil). payload is only valid
// during the call.
type Handler func(payload []byte, err error)

// Listener is a bound UDP socket.
type Listener struct {
	conn net.PacketConn
	once sync.Once
}

// readBuffer is the socket receive buffer asked for, to absorb bursts (the
// kernel may grant less).
const readBuffer = 4 << 20

// Listen binds addr ("host:port") for UDP.
func Listen(addr string) (*Listener, error) {
	conn, err := net.ListenPacket("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("syslog: listen %s: %w", addr, err)
	}
	if uc, ok := conn.(*net.UDPConn); ok {
		_ = uc.SetReadBuffer(readBuffer) // best effort
	}
	return &Listener{conn: conn}, nil
}

// Addr is the bound address.
func (l *Listener) Addr() net.Addr { return l.conn.LocalAddr() }

// Close closes the socket; Serve then returns.
func (l *Listener) Close() error {
	var err error
	l.once.Do(func() { err = l.conn.Close() })
	return err
}

// Serve reads datagrams and calls h for each until ctx ends or the listener
// is closed; it closes the listener and returns nil then, or the read error
// that stopped it.
func (l *Listener) Serve(ctx context.Context, h Handler) error {
	stop := context.AfterFunc(ctx, func() { _ = l.Close() })
	defer stop()
	defer l.Close()
	buf := make([]byte, MaxDatagram+1)
	for {
		n, _, err := l.conn.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("syslog: read: %w", err)
		}
		if n > MaxDatagram {
			h(nil, ErrOversized)
			continue
		}
		msg, ok := Strip(buf[:n])
		if !ok {
			h(nil, ErrFrame)
			continue
		}
		h(msg, nil)
	}
}

// Strip removes the syslog header "<PRI>Mmm dd hh:mm:ss [HOST ]orchestry: "
// and returns the message after it, and whether the header was well formed.
func Strip(b []byte) ([]byte, bool) {
	// <PRI>: one to three digits.
	if len(b) < 3 || b[0] != '<' {
		return nil, false
	}
	i := 1
	for i < len(b) && i < 4 && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	if i == 1 || i >= len(b) || b[i] != '>' {
		return nil, false
	}
	b = b[i+1:]
	// TIMESTAMP: "Mmm dd hh:mm:ss " (the day is space-padded).
	const ts = len("Nov 25 09:30:00 ")
	if len(b) < ts || b[3] != ' ' || b[6] != ' ' || b[9] != ':' || b[12] != ':' || b[15] != ' ' {
		return nil, false
	}
	b = b[ts:]
	// An optional HOST, then the tag and ": ".
	if msg, ok := cutTag(b); ok {
		return msg, true
	}
	sp := 0
	for sp < len(b) && sp < 256 && b[sp] != ' ' {
		sp++
	}
	if sp == 0 || sp >= len(b) || b[sp] != ' ' {
		return nil, false
	}
	return cutTag(b[sp+1:])
}

func cutTag(b []byte) ([]byte, bool) {
	const head = Tag + ": "
	if len(b) < len(head) || string(b[:len(head)]) != head {
		return nil, false
	}
	return b[len(head):], true
}
