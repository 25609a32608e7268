package accesslog

import (
	"bytes"
	"net/netip"
	"time"
)

// list walks one upstream variable: items separated by ", " within a
// group, groups separated by " : ".
type list struct {
	field string
	s     []byte
}

// next returns the next item and what follows it: ',' (next item of the
// group), ':' (next group) or 0 (end of the list).
func (l *list) next() ([]byte, byte) {
	for i := 0; i < len(l.s); i++ {
		switch {
		case l.s[i] == ',' && i+1 < len(l.s) && l.s[i+1] == ' ':
			item := l.s[:i]
			l.s = l.s[i+2:]
			return item, ','
		case l.s[i] == ' ' && i+2 < len(l.s) && l.s[i+1] == ':' && l.s[i+2] == ' ':
			item := l.s[:i]
			l.s = l.s[i+3:]
			return item, ':'
		}
	}
	item := l.s
	l.s = nil
	return item, 0
}

// address parses an upstream address: ip:port, or an upstream group name
// (NGINX logs it when it could not pick a server), which leaves a zero.
func address(b []byte, dst *netip.AddrPort) error {
	if ap, ok := ipv4Port(b); ok {
		*dst = ap
		return nil
	}
	if len(b) > 0 && (b[0] == '[' || bytes.IndexByte(b, ':') >= 0) {
		if len(b) > 64 {
			return fail(fUpstreamAddr, ErrAddress, "too long")
		}
		ap, err := netip.ParseAddrPort(string(b))
		if err != nil || ap.Port() == 0 || ap.Addr().Zone() != "" || ap.Addr().IsUnspecified() {
			return fail(fUpstreamAddr, ErrAddress, "must be ip:port or an upstream name")
		}
		*dst = ap // as NGINX logged it: an IPv4-mapped address stays mapped
		return nil
	}
	if !groupName(b) {
		return fail(fUpstreamAddr, ErrAddress, "must be ip:port or an upstream name")
	}
	*dst = netip.AddrPort{}
	return nil
}

// ipv4Port parses the common a.b.c.d:port without allocating.
func ipv4Port(b []byte) (netip.AddrPort, bool) {
	var ip [4]byte
	i := 0
	for part := range 4 {
		n, digits := 0, 0
		for i < len(b) && b[i] >= '0' && b[i] <= '9' && digits < 3 {
			n = n*10 + int(b[i]-'0')
			i++
			digits++
		}
		if digits == 0 || n > 255 || (digits > 1 && b[i-digits] == '0') {
			return netip.AddrPort{}, false
		}
		ip[part] = byte(n)
		want := byte('.')
		if part == 3 {
			want = ':'
		}
		if i >= len(b) || b[i] != want {
			return netip.AddrPort{}, false
		}
		i++
	}
	port, ok := integer(b[i:])
	if !ok || port < 1 || port > 65535 || len(b)-i > 5 || (b[i] == '0') {
		return netip.AddrPort{}, false
	}
	a := netip.AddrFrom4(ip)
	if a.IsUnspecified() {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(a, uint16(port)), true
}

// groupName reports whether b can be the name of an Orchestry upstream
// (letters, digits, '_' and '-'; never dotted, so a bare IP is refused).
func groupName(b []byte) bool {
	if len(b) == 0 || len(b) > 128 {
		return false
	}
	for _, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// status parses a three-digit status, or "-" as 0.
func status(b []byte) (int, bool) {
	if len(b) == 1 && b[0] == '-' {
		return 0, true
	}
	if len(b) != 3 {
		return 0, false
	}
	n, ok := integer(b)
	return int(n), ok
}

// integer parses 1-18 decimal digits.
func integer(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// decimal parses seconds with up to three decimals into milliseconds.
func decimal(b []byte) (int64, bool) {
	whole, frac, dot := bytes.Cut(b, []byte{'.'})
	if len(whole) > 12 || (dot && (len(frac) == 0 || len(frac) > 3)) {
		return 0, false
	}
	s, ok := integer(whole)
	if !ok {
		return 0, false
	}
	var ms int64
	if dot {
		f, ok := integer(frac)
		if !ok {
			return 0, false
		}
		for range 3 - len(frac) {
			f *= 10
		}
		ms = f
	}
	return s*1000 + ms, true
}

// seconds parses an NGINX time ("0.012") or "-" (Unknown).
func seconds(b []byte) (time.Duration, bool) {
	if len(b) == 1 && b[0] == '-' {
		return Unknown, true
	}
	ms, ok := decimal(b)
	if !ok || ms > int64(24*time.Hour/time.Millisecond) {
		return 0, false
	}
	return time.Duration(ms) * time.Millisecond, true
}
