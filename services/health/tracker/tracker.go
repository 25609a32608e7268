// Package tracker holds the health state machine of each probed instance:
// consecutive successes and failures, thresholds, and the transitions
// between healthy and unhealthy that the service publishes. It does no I/O.
package tracker

import (
	"strings"
	"sync"
	"time"

	"github.com/orchestry/orchestry/pkg/events"
)

// Default thresholds, used when a health check leaves them at zero.
const (
	DefaultFailureThreshold = 3
	DefaultSuccessThreshold = 1
)

// Thresholds are how many consecutive results flip a state.
type Thresholds struct {
	// Failure is the consecutive failures that make a healthy instance
	// unhealthy; 0 means DefaultFailureThreshold.
	Failure int
	// Success is the consecutive successes that make an unhealthy instance
	// healthy; 0 means DefaultSuccessThreshold.
	Success int
}

func (t Thresholds) withDefaults() Thresholds {
	if t.Failure <= 0 {
		t.Failure = DefaultFailureThreshold
	}
	if t.Success <= 0 {
		t.Success = DefaultSuccessThreshold
	}
	return t
}

// Result is one probe outcome.
type Result struct {
	OK      bool
	Latency time.Duration
	Err     string
	At      time.Time
}

// Step applies r to st and reports whether the state must be published:
// when st is not known yet (a new instance starts in initial, and its first
// state is reported), or when the consecutive count reached its threshold
// and the state flipped between healthy and unhealthy. States other than
// healthy and unhealthy (ejected, draining) are kept; only counts change.
func Step(st events.HealthState, known bool, initial string, th Thresholds, r Result) (events.HealthState, bool) {
	th = th.withDefaults()
	report := false
	if !known {
		st.State = initial
		st.Since = r.At
		st.ConsecutiveSuccesses, st.ConsecutiveFailures = 0, 0
		report = true
	}
	st.LastLatencyMS = float64(r.Latency.Microseconds()) / 1000
	if r.OK {
		st.ConsecutiveSuccesses++
		st.ConsecutiveFailures = 0
		st.LastError = ""
		if st.State == events.HealthUnhealthy && st.ConsecutiveSuccesses >= th.Success {
			st.State, st.Since, report = events.HealthHealthy, r.At, true
		}
	} else {
		st.ConsecutiveFailures++
		st.ConsecutiveSuccesses = 0
		st.LastError = r.Err
		if st.State == events.HealthHealthy && st.ConsecutiveFailures >= th.Failure {
			st.State, st.Since, report = events.HealthUnhealthy, r.At, true
		}
	}
	return st, report
}

// Tracker holds the state of every instance, keyed by events.HealthKey. It
// is safe for concurrent use.
type Tracker struct {
	initial string
	mu      sync.Mutex
	states  map[string]*entry
}

type entry struct {
	st events.HealthState
	// pending: a reported state not yet stored; reported again until
	// Commit or Adopt.
	pending bool
}

// New returns a Tracker in which new instances start in initial
// (events.HealthHealthy or events.HealthUnhealthy).
func New(initial string) *Tracker {
	return &Tracker{initial: initial, states: map[string]*entry{}}
}

// Observe applies r to the instance at key and returns its state and
// whether to publish it (a transition, a new instance's first state, or an
// earlier report that was never committed). The returned Revision is the
// last committed one.
func (t *Tracker) Observe(key, app, instanceID string, th Thresholds, r Result) (events.HealthState, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, known := t.states[key]
	if !known {
		e = &entry{st: events.HealthState{App: app, InstanceID: instanceID}}
		t.states[key] = e
	}
	st, report := Step(e.st, known, t.initial, th, r)
	e.st = st
	if report {
		e.pending = true
	}
	return st, e.pending
}

// Commit records that the state at key was stored at revision rev.
func (t *Tracker) Commit(key string, rev uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e, ok := t.states[key]; ok {
		e.st.Revision = rev
		e.pending = false
	}
}

// Adopt takes st (read from the store) as the state at key when it is
// newer than what the Tracker has, or when force is set (another writer
// won a race). It reports whether st was taken.
func (t *Tracker) Adopt(key string, st events.HealthState, force bool) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.states[key]
	if ok && !force && st.Revision <= e.st.Revision {
		return false
	}
	t.states[key] = &entry{st: st}
	return true
}

// ResetCounts clears the consecutive counts at key, keeping the state, for
// an instance this replica takes over from another.
func (t *Tracker) ResetCounts(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e, ok := t.states[key]; ok {
		e.st.ConsecutiveSuccesses, e.st.ConsecutiveFailures = 0, 0
	}
}

// Get returns the state at key and whether there is one.
func (t *Tracker) Get(key string) (events.HealthState, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.states[key]
	if !ok {
		return events.HealthState{}, false
	}
	return e.st, true
}

// Forget drops the state at key.
func (t *Tracker) Forget(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.states, key)
}

// Keys returns every key starting with prefix.
func (t *Tracker) Keys(prefix string) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var keys []string
	for k := range t.states {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	return keys
}
