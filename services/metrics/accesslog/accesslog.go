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
	// ConfigVersion is the version of the node's config that served the
	// request; 0 when the line does not say (a renderer older than the
	// field).
	ConfigVersion uint64
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
	fConfigVersion    = "config_version"
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
	iConfigVersion // optional
	nFields
)

var names = [nFields]string{fV, fNode, fApp, fTS, fStatus, fRequestTime,
	fUpstreamAddr, fUpstreamStatus, fUpstreamConnect, fUpstreamHeader, fUpstreamResponse, fBytesSent, fConfigVersion}

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
		if !p.seen[i] && i != iConfigVersion {
			return nil, fail(names[i], ErrMissing, "")
		}
	}
	for i := range nFields {
		if p.seen[i] && p.isStr[i] != (i != iV) {
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
	if p.seen[iConfigVersion] {
		v, ok := integer(p.vals[iConfigVersion])
		if !ok {
			return nil, fail(fConfigVersion, ErrInvalid, "must be a non-negative integer")
		}
		r.ConfigVersion = uint64(v)
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

func itoa(i int) string { return strconv.Itoa(i) }
