// Package feed keeps the recent events of every family routing can see
// (routing.changed, instance.registered|deregistered|health,
// config.rendered, cert.issued|failed, metrics.upstream and rejected) as a
// bounded ring of EventRecords with a short human-readable summary each,
// for GET /v1/events and the Server-Sent Events stream
// GET /v1/events/stream. Subscribers get every new record through a
// bounded buffer; one that falls behind is dropped, never waited for.
package feed

import (
	"encoding/json"
	"strings"
	"sync"
	"time"
)

// Defaults of Options.
const (
	DefaultSize   = 1000
	DefaultReplay = 10 * time.Minute
	DefaultBuffer = 256
)

// EventRecord is one event as the feed shows it. It never holds a private
// key: no event carries one.
type EventRecord struct {
	// Seq numbers the records of this routing replica from 1, in the
	// order they entered the feed (it restarts with the replica).
	Seq     uint64 `json:"seq"`
	Subject string `json:"subject"`
	// Type is the CloudEvents type ("io.orchestry.instance.health.v1").
	Type string `json:"type"`
	// ID is the envelope id.
	ID string `json:"id"`
	// Time is the envelope time (when the event was published).
	Time   time.Time `json:"time"`
	App    string    `json:"app,omitempty"`
	Node   string    `json:"node,omitempty"`
	Domain string    `json:"domain,omitempty"`
	// Summary says what happened in one line, for people.
	Summary string `json:"summary"`
	// Data is the event's data, as published.
	Data json.RawMessage `json:"data"`
}

// Filter selects records: App, when set, must equal the record's app;
// Subject, when set, is a prefix of the record's subject
// ("instance.health"), or, when one of its tokens is a NATS wildcard, a
// NATS filter it must match ("instance.*.web", "cert.>").
type Filter struct {
	App     string
	Subject string
}

// Match reports whether r passes f.
func (f Filter) Match(r EventRecord) bool {
	if f.App != "" && r.App != f.App {
		return false
	}
	if isWildcard(f.Subject) {
		return matchSubject(f.Subject, r.Subject)
	}
	return strings.HasPrefix(r.Subject, f.Subject)
}

// isWildcard reports whether filter has a "*" or ">" token.
func isWildcard(filter string) bool {
	for _, t := range strings.Split(filter, ".") {
		if t == "*" || t == ">" {
			return true
		}
	}
	return false
}

// matchSubject is NATS subject matching: "*" matches one token, a final
// ">" one or more.
func matchSubject(filter, subject string) bool {
	ft, st := strings.Split(filter, "."), strings.Split(subject, ".")
	for i, t := range ft {
		if t == ">" && i == len(ft)-1 {
			return len(st) > i
		}
		if i >= len(st) || (t != "*" && t != st[i]) {
			return false
		}
	}
	return len(ft) == len(st)
}

// Options size a Feed; zero values take the defaults.
type Options struct {
	// Size is how many records the ring keeps (DefaultSize).
	Size int
	// Replay is how far back Run reads the streams at start
	// (DefaultReplay); negative reads new events only.
	Replay time.Duration
	// Buffer is how many records a subscriber may have waiting before it
	// is dropped (DefaultBuffer).
	Buffer int
}

// Feed is the ring of recent records and its live subscribers. It is safe
// for concurrent use.
type Feed struct {
	opts Options

	mu     sync.Mutex
	ring   []EventRecord // circular, len(ring) == opts.Size once full
	next   int           // index the next record goes to once full
	seq    uint64
	subs   map[*Subscription]struct{}
	closed bool
}

// New returns an empty feed.
func New(opts Options) *Feed {
	if opts.Size <= 0 {
		opts.Size = DefaultSize
	}
	if opts.Replay == 0 {
		opts.Replay = DefaultReplay
	}
	if opts.Buffer <= 0 {
		opts.Buffer = DefaultBuffer
	}
	return &Feed{opts: opts, subs: map[*Subscription]struct{}{}}
}

// Subscription receives the records added after it was made.
type Subscription struct {
	filter Filter
	ch     chan EventRecord
	gone   chan struct{}
}

// C delivers the subscription's records, oldest first.
func (s *Subscription) C() <-chan EventRecord { return s.ch }

// Dropped is closed when the feed dropped the subscription because its
// buffer was full, or was closed; records already in C are still there to
// read.
func (s *Subscription) Dropped() <-chan struct{} { return s.gone }

// Add numbers r (its Seq is overwritten), keeps it in the ring, and hands
// it to every subscriber whose filter it passes. It returns the record as
// kept.
func (f *Feed) Add(r EventRecord) EventRecord {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seq++
	r.Seq = f.seq
	if len(f.ring) < f.opts.Size {
		f.ring = append(f.ring, r)
	} else {
		f.ring[f.next] = r
		f.next = (f.next + 1) % f.opts.Size
	}
	for s := range f.subs {
		if !s.filter.Match(r) {
			continue
		}
		select {
		case s.ch <- r:
		default: // too slow: dropped, never waited for
			delete(f.subs, s)
			close(s.gone)
		}
	}
	return r
}

// Last is the Seq of the newest record (0: none yet).
func (f *Feed) Last() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.seq
}

// Recent returns, oldest first, the newest limit records (all when limit
// is 0) that pass filter and come after Seq after.
func (f *Feed) Recent(filter Filter, after uint64, limit int) []EventRecord {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.recent(filter, after, limit)
}

func (f *Feed) recent(filter Filter, after uint64, limit int) []EventRecord {
	out := []EventRecord{}
	n := len(f.ring)
	// Newest first, so limit keeps the newest; reversed at the end.
	for i := range n {
		r := f.ring[(f.next+n-1-i)%n]
		if r.Seq <= after {
			break
		}
		if !filter.Match(r) {
			continue
		}
		out = append(out, r)
		if limit > 0 && len(out) == limit {
			break
		}
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// Subscribe returns the records in the ring after Seq after that pass
// filter, oldest first, and a subscription to the ones added from then
// on: together they miss and repeat nothing. End it with Unsubscribe.
func (f *Feed) Subscribe(filter Filter, after uint64) ([]EventRecord, *Subscription) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := &Subscription{filter: filter, ch: make(chan EventRecord, f.opts.Buffer), gone: make(chan struct{})}
	if f.closed {
		close(s.gone)
	} else {
		f.subs[s] = struct{}{}
	}
	return f.recent(filter, after, 0), s
}

// Close ends every subscription (their Dropped closes) and every later
// one at once, so long-lived streams end when the API shuts down; the ring
// still answers Recent.
func (f *Feed) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	for s := range f.subs {
		delete(f.subs, s)
		close(s.gone)
	}
}

// Closed reports whether Close was called.
func (f *Feed) Closed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed
}

// Unsubscribe ends s; it is a no-op for one already dropped.
func (f *Feed) Unsubscribe(s *Subscription) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.subs[s]; ok {
		delete(f.subs, s)
		close(s.gone)
	}
}

// Subscribers is how many subscriptions are live.
func (f *Feed) Subscribers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.subs)
}
