// Package accesslog parses one NGINX access log line in Orchestry's
// orchestry_json format (one flat JSON object of string values, written by
// NGINX with escape=json) into a Record with one Attempt per upstream try.
//
// The parser is strict, because anyone who can reach the syslog port can send
// a line: the app and node must be valid names, every upstream address must
// parse, and the upstream lists must align item for item and group for
// group. Every refusal is an *Error naming the field, wrapping one of the
// sentinel errors below so callers can count refusals by reason.
//
// A Parser reuses its memory: parsing a well-formed line allocates nothing
// once the parser has seen the line's app and node names.
package accesslog

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"time"

	"github.com/orchestry/orchestry/pkg/events"
)

// Version is the format version ("v") this package reads.
const Version = 1

// MaxLine is the longest line Parse accepts.
const MaxLine = 8 << 10

// Unknown is the duration of a time NGINX logged as "-" or did not log.
const Unknown time.Duration = -1

// Reasons a line is refused; every *Error wraps exactly one.
var (
	// ErrTooLong: the line is longer than MaxLine.
	ErrTooLong = errors.New("line too long")
	// ErrSyntax: the line is not one flat JSON object of string and
	// number values.
	ErrSyntax = errors.New("invalid JSON")
	// ErrMissing: a required field is absent.
	ErrMissing = errors.New("missing field")
	// ErrInvalid: a field's value does not follow its grammar.
	ErrInvalid = errors.New("invalid value")
	// ErrAddress: an upstream address is neither ip:port nor an upstream
	// group name.
	ErrAddress = errors.New("invalid address")
	// ErrMisaligned: the upstream lists differ in length or grouping.
	ErrMisaligned = errors.New("upstream lists do not align")
)

// Error is a refused line: which field, which reason, and a detail.
type Error struct {
	// Field is the JSON key at fault ("" for the line as a whole).
	Field string
	// Err is one of the sentinel errors of this package.
	Err error
	// Detail says more, without echoing hostile input at length.
	Detail string
}

func (e *Error) Error() string {
	s := "accesslog: "
	if e.Field != "" {
		s += e.Field + ": "
	}
	s += e.Err.Error()
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// Unwrap returns the sentinel reason.
func (e *Error) Unwrap() error { return e.Err }

func fail(field string, err error, detail string) error {
	return &Error{Field: field, Err: err, Detail: detail}
}

// Record is one request as NGINX logged it.
type Record struct {
	Node string
	App  string
	// Time is when NGINX logged the request ($msec).
	Time        time.Time
	Status      int
	RequestTime time.Duration
	// Attempts are the upstream tries in order; empty when NGINX answered
	// without an upstream (e.g. the 503 of an app without instances).
	Attempts []Attempt
	// Bytes is what NGINX sent to the client ($bytes_sent).
	Bytes int64
}

// Attempt is one try of one upstream server.
type Attempt struct {
	// Addr is the server tried. It is the zero AddrPort when NGINX could
	// not pick a server and logged the upstream group's name instead
	// (every server down or failed); such an attempt belongs to no
	// address.
	Addr netip.AddrPort
	// Status is the upstream's status; 0 when NGINX logged "-".
	Status int
	// Times are Unknown when NGINX logged "-".
	ConnectTime  time.Duration
	HeaderTime   time.Duration
	ResponseTime time.Duration
	// Retry is set when the attempt was not the first of its request (or
	// of its internal redirect's group).
	Retry bool
}

// Field names of the format.
const (
	fV                = "v"
	fNode             = "node"
	fApp              = "app"
	fTS               = "ts"
	fStatus           = "status"
	fRequestTime      = "request_time"
	fUpstreamAddr     = "upstream_addr"
	fUpstreamStatus   = "upstream_status"
	fUpstreamConnect  = "upstream_connect_time"
	fUpstreamHeader   = "upstream_header_time"
	fUpstreamResponse = "upstream_response_time"
	fBytesSent        = "bytes_sent"
)

// field indexes, in the order of names.
const (
	iV = iota
	iNode
	iApp
	iTS
	iStatus
	iRequestTime
	iAddr
	iUStatus
	iConnect
	iHeader
	iResponse
	iBytes
	nFields
)

var names = [nFields]string{fV, fNode, fApp, fTS, fStatus, fRequestTime,
	fUpstreamAddr, fUpstreamStatus, fUpstreamConnect, fUpstreamHeader, fUpstreamResponse, fBytesSent}

// maxInterned bounds the names a Parser remembers; beyond it names are
// checked and copied on every line.
const maxInterned = 4096

// Parser parses lines, reusing its memory between calls. It is not safe
// for concurrent use; use one per goroutine.
type Parser struct {
	rec    Record
	vals   [nFields][]byte
	seen   [nFields]bool
	isStr  [nFields]bool
	names  map[string]string // checked app and node names
	escBuf []byte
}

// NewParser returns a Parser.
func NewParser() *Parser {
	return &Parser{names: make(map[string]string)}
}

// Parse parses one line. The Record it returns, and its Attempts, are valid
// until the next call of Parse.
func (p *Parser) Parse(line []byte) (*Record, error) {
	if len(line) > MaxLine {
		return nil, fail("", ErrTooLong, fmt.Sprintf("%d bytes, at most %d", len(line), MaxLine))
	}
	if err := p.scan(line); err != nil {
		return nil, err
	}
	for i := range nFields {
		if !p.seen[i] {
			return nil, fail(names[i], ErrMissing, "")
		}
	}
	for i := range nFields {
		if p.isStr[i] != (i != iV) {
			return nil, fail(names[i], ErrInvalid, "wrong JSON type")
		}
	}
	if v := p.vals[iV]; len(v) != 1 || v[0] != '0'+Version {
		return nil, fail(fV, ErrInvalid, fmt.Sprintf("version must be %d", Version))
	}
	r := &p.rec
	*r = Record{Attempts: r.Attempts[:0]}
	var err error
	if r.Node, err = p.name(fNode, p.vals[iNode]); err != nil {
		return nil, err
	}
	if r.App, err = p.name(fApp, p.vals[iApp]); err != nil {
		return nil, err
	}
	ms, ok := decimal(p.vals[iTS])
	if !ok {
		return nil, fail(fTS, ErrInvalid, "must be seconds with up to three decimals")
	}
	r.Time = time.UnixMilli(ms)
	if r.Status, ok = status(p.vals[iStatus]); !ok || r.Status == 0 {
		return nil, fail(fStatus, ErrInvalid, "must be a three-digit status")
	}
	if r.RequestTime, ok = seconds(p.vals[iRequestTime]); !ok || r.RequestTime == Unknown {
		return nil, fail(fRequestTime, ErrInvalid, "must be seconds with up to three decimals")
	}
	if r.Bytes, ok = integer(p.vals[iBytes]); !ok {
		return nil, fail(fBytesSent, ErrInvalid, "must be a non-negative integer")
	}
	if err := p.attempts(r); err != nil {
		return nil, err
	}
	return r, nil
}

// name returns the checked, interned name in v.
func (p *Parser) name(field string, v []byte) (string, error) {
	if s, ok := p.names[string(v)]; ok {
		return s, nil
	}
	if len(v) == 0 {
		return "", fail(field, ErrMissing, "empty")
	}
	s := string(v)
	if err := events.CheckName(s); err != nil {
		return "", fail(field, ErrInvalid, err.Error())
	}
	if len(p.names) < maxInterned {
		p.names[s] = s
	}
	return s, nil
}

// attempts splits the five upstream lists in lockstep into r.Attempts.
func (p *Parser) attempts(r *Record) error {
	lists := [5]list{
		{field: fUpstreamAddr, s: p.vals[iAddr]},
		{field: fUpstreamStatus, s: p.vals[iUStatus]},
		{field: fUpstreamConnect, s: p.vals[iConnect]},
		{field: fUpstreamHeader, s: p.vals[iHeader]},
		{field: fUpstreamResponse, s: p.vals[iResponse]},
	}
	// No upstream at all: every list empty (escape=json logs an unset
	// variable as "") or "-".
	if none(lists[0].s) {
		for _, l := range lists[1:] {
			if !none(l.s) {
				return fail(l.field, ErrMisaligned, "values without upstream_addr")
			}
		}
		return nil
	}
	first := true
	for {
		var items [5][]byte
		var seps [5]byte
		for i := range lists {
			items[i], seps[i] = lists[i].next()
		}
		for i := 1; i < len(lists); i++ {
			if seps[i] != seps[0] {
				return fail(lists[i].field, ErrMisaligned, "differs from upstream_addr in length or grouping")
			}
		}
		a := Attempt{Retry: !first}
		if err := address(items[0], &a.Addr); err != nil {
			return err
		}
		var ok bool
		if a.Status, ok = status(items[1]); !ok {
			return fail(fUpstreamStatus, ErrInvalid, "must be three-digit statuses or '-'")
		}
		for i, d := range []*time.Duration{&a.ConnectTime, &a.HeaderTime, &a.ResponseTime} {
			if *d, ok = seconds(items[2+i]); !ok {
				return fail(lists[2+i].field, ErrInvalid, "must be seconds with up to three decimals or '-'")
			}
		}
		r.Attempts = append(r.Attempts, a)
		switch seps[0] {
		case 0:
			return nil
		case ',':
			first = false
		case ':':
			first = true // a new group after an internal redirect
		}
	}
}

func none(s []byte) bool { return len(s) == 0 || (len(s) == 1 && s[0] == '-') }

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

// scan reads the flat JSON object into p.vals without allocating. Values
// holding escapes are unescaped into p.escBuf.
func (p *Parser) scan(line []byte) error {
	p.seen = [nFields]bool{}
	p.escBuf = p.escBuf[:0]
	s := scanner{b: line}
	s.space()
	if !s.eat('{') {
		return fail("", ErrSyntax, "not a JSON object")
	}
	s.space()
	if s.eat('}') {
		return fail("", ErrSyntax, "empty object")
	}
	for {
		s.space()
		key, esc, ok := s.str()
		if !ok {
			return fail("", ErrSyntax, "bad key at byte "+itoa(s.i))
		}
		s.space()
		if !s.eat(':') {
			return fail("", ErrSyntax, "':' expected at byte "+itoa(s.i))
		}
		s.space()
		var val []byte
		quoted := s.peek() == '"'
		if quoted {
			var vesc bool
			if val, vesc, ok = s.str(); !ok {
				return fail("", ErrSyntax, "bad string at byte "+itoa(s.i))
			}
			if vesc {
				if val, ok = p.unescape(val); !ok {
					return fail("", ErrSyntax, "bad escape at byte "+itoa(s.i))
				}
			}
		} else if val, ok = s.number(); !ok {
			return fail("", ErrSyntax, "value must be a string or number at byte "+itoa(s.i))
		}
		if !esc { // no field name of the format needs escapes
			for i := range nFields {
				if string(key) == names[i] {
					if p.seen[i] {
						return fail(names[i], ErrSyntax, "duplicate field")
					}
					p.seen[i] = true
					p.vals[i] = val
					p.isStr[i] = quoted
					break
				}
			}
		}
		s.space()
		if s.eat('}') {
			break
		}
		if !s.eat(',') {
			return fail("", ErrSyntax, "',' or '}' expected at byte "+itoa(s.i))
		}
	}
	s.space()
	if s.i != len(s.b) {
		return fail("", ErrSyntax, "trailing data after the object")
	}
	return nil
}

// unescape decodes a JSON string body with escapes into p.escBuf. Only
// hostile or unusual lines take this path.
func (p *Parser) unescape(body []byte) ([]byte, bool) {
	quoted := make([]byte, 0, len(body)+2)
	quoted = append(append(append(quoted, '"'), body...), '"')
	var s string
	if err := json.Unmarshal(quoted, &s); err != nil {
		return nil, false
	}
	start := len(p.escBuf)
	p.escBuf = append(p.escBuf, s...)
	return p.escBuf[start:len(p.escBuf):len(p.escBuf)], true
}

func itoa(i int) string { return strconv.Itoa(i) }

// scanner is a cursor over a line.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) peek() byte {
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *scanner) eat(c byte) bool {
	if s.peek() == c && s.i < len(s.b) {
		s.i++
		return true
	}
	return false
}

func (s *scanner) space() {
	for s.i < len(s.b) && (s.b[s.i] == ' ' || s.b[s.i] == '\t' || s.b[s.i] == '\n' || s.b[s.i] == '\r') {
		s.i++
	}
}

// str reads a JSON string and returns its raw body and whether it holds
// escapes. Control characters are refused.
func (s *scanner) str() (body []byte, esc, ok bool) {
	if !s.eat('"') {
		return nil, false, false
	}
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			body = s.b[start:s.i]
			s.i++
			return body, esc, true
		case c == '\\':
			esc = true
			s.i += 2
		case c < 0x20:
			return nil, false, false
		default:
			s.i++
		}
	}
	return nil, false, false
}

// number reads a JSON number's text (integer digits only are used by the
// format; anything else is refused later by the field's grammar).
func (s *scanner) number() ([]byte, bool) {
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		if c >= '0' && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E' {
			s.i++
			continue
		}
		break
	}
	return s.b[start:s.i], s.i > start
}
