// Package tracker holds the health state machine of each probed instance:
// consecutive successes and failures, thresholds, ejections and their
// return, and the transitions between healthy, unhealthy and ejected that
// the service publishes. It does no I/O.
package tracker

import (
	"strings"
	"sync"
	"time"

	"github.com/orchestry/orchestry/pkg/events"
	"github.com/orchestry/orchestry/services/health/outlier"
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
// and the state flipped between healthy and unhealthy.
//
// An ejected instance (passive outlier detection took it out) stays ejected
// until returnAt, whatever its probes say; they only update the counts.
// From returnAt on, a passing probe makes it healthy, and failures that
// reach the failure threshold make it unhealthy. Other states (draining)
// are kept; only counts change.
func Step(st events.HealthState, known bool, initial string, th Thresholds, r Result, returnAt time.Time) (events.HealthState, bool) {
	th = th.withDefaults()
	report := false
	if !known {
		st.State = initial
		st.Since = r.At
		st.ConsecutiveSuccesses, st.ConsecutiveFailures = 0, 0
		report = true
	}
	back := st.State == events.HealthEjected && !r.At.Before(returnAt)
	st.LastLatencyMS = float64(r.Latency.Microseconds()) / 1000
	ejected := st.State == events.HealthEjected
	if r.OK {
		st.ConsecutiveSuccesses++
		st.ConsecutiveFailures = 0
		if !ejected || back {
			st.LastError = "" // an ejection keeps its reason while it lasts
		}
		if back || st.State == events.HealthUnhealthy && st.ConsecutiveSuccesses >= th.Success {
			st.State, st.Since, report = events.HealthHealthy, r.At, true
		}
	} else {
		st.ConsecutiveFailures++
		st.ConsecutiveSuccesses = 0
		st.LastError = r.Err
		if (back || st.State == events.HealthHealthy) && st.ConsecutiveFailures >= th.Failure {
			st.State, st.Since, report = events.HealthUnhealthy, r.At, true
		}
	}
	if st.State != events.HealthEjected {
		st.EjectedUntil = nil
	}
	return st, report
}

// Tracker holds the state of every instance, keyed by events.HealthKey. It
// is safe for concurrent use.
type Tracker struct {
	initial string
	backoff outlier.Backoff
	mu      sync.Mutex
	states  map[string]*entry
}

type entry struct {
	// st is the working state: the stored one plus this replica's probes.
	st events.HealthState
	// stored is the state last stored in KV (committed here or read
	// back); zero when nothing was stored.
	stored events.HealthState
	// pending: a reported state not yet stored; reported again until
	// Commit or Adopt.
	pending bool
	// hist is the ejection history, from the stored states.
	hist outlier.History
	// until is when the current ejection may end.
	until time.Time
}

// New returns a Tracker in which new instances start in initial
// (events.HealthHealthy or events.HealthUnhealthy) and ejections last as b
// says.
func New(initial string, b outlier.Backoff) *Tracker {
	return &Tracker{initial: initial, backoff: b, states: map[string]*entry{}}
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
	st, report := Step(e.st, known, t.initial, th, r, e.until)
	e.st = st
	if report {
		e.pending = true
	}
	return st, e.pending
}

// Eject takes the healthy instance at key out of service at time at,
// for the time its ejection history gives, with reason why. It returns the
// state to publish, or false when the instance is not known or not healthy
// (an unhealthy or ejected instance is already out).
func (t *Tracker) Eject(key, why string, at time.Time) (events.HealthState, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.states[key]
	if !ok || e.st.State != events.HealthHealthy {
		return events.HealthState{}, false
	}
	n, d := t.backoff.Next(e.hist, at)
	until := at.Add(d)
	e.st.State, e.st.Since = events.HealthEjected, at
	e.st.LastError = outlier.Reason(why, d)
	e.st.Ejections, e.st.EjectedUntil = n, &until
	e.until = until
	e.pending = true
	return e.st, true
}

// note updates the ejection history from a state just stored (committed or
// read back). The count and end of an ejection are those its writer
// decided (Ejections, EjectedUntil), so a replica that started later knows
// them too; an ejection published without them (by another system) lasts
// what this replica's back-off gives.
func (t *Tracker) note(e *entry, st events.HealthState) {
	if st.State != events.HealthEjected {
		if !e.hist.EjectedAt.IsZero() && e.hist.Returned.IsZero() {
			e.hist.Returned = st.Since
		}
		return
	}
	if st.Since.Equal(e.hist.EjectedAt) {
		return // already noted
	}
	if st.Ejections > 0 && st.EjectedUntil != nil {
		e.hist = outlier.History{Ejections: st.Ejections, EjectedAt: st.Since}
		e.until = *st.EjectedUntil
		return
	}
	n, d := t.backoff.Next(e.hist, st.Since)
	e.hist = outlier.History{Ejections: n, EjectedAt: st.Since}
	e.until = st.Since.Add(d)
}

// Commit records that st (the state Observe or Eject reported) was stored
// at revision st.Revision. A newer local state reported meanwhile stays
// pending, now against that revision.
func (t *Tracker) Commit(key string, st events.HealthState) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.states[key]
	if !ok {
		return
	}
	e.stored = st
	t.note(e, st)
	e.st.Revision = st.Revision
	if e.st.State == st.State && e.st.Since.Equal(st.Since) {
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
	if !ok {
		e = &entry{}
		t.states[key] = e
	}
	e.st, e.stored, e.pending = st, st, false
	t.note(e, st)
	return true
}

// Resume makes the stored state the working state at key, dropping the
// counts and any unstored report this replica kept from an earlier time it
// probed the instance. It is called when this replica takes the instance
// over from another, so it continues from the stored truth (state and
// counts) and publishes nothing for a state that did not change. With
// nothing stored, the instance starts afresh.
func (t *Tracker) Resume(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.states[key]
	if !ok {
		return
	}
	if e.stored.State == "" {
		delete(t.states, key)
		return
	}
	e.st, e.pending = e.stored, false
}

// ReturnAt is when the ejection of the instance at key may end (zero when
// it is not ejected).
func (t *Tracker) ReturnAt(key string) time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e, ok := t.states[key]; ok && e.st.State == events.HealthEjected {
		return e.until
	}
	return time.Time{}
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

// Drain puts the instance at key in the draining state at time at (its
// probes stop; counts are reset). It returns the state to publish, or false
// when it is already draining.
func (t *Tracker) Drain(key, app, instanceID string, at time.Time) (events.HealthState, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.states[key]
	if !ok {
		e = &entry{st: events.HealthState{App: app, InstanceID: instanceID}}
		t.states[key] = e
	}
	if e.st.State == events.HealthDraining {
		return e.st, false
	}
	e.st.State, e.st.Since = events.HealthDraining, at
	e.st.ConsecutiveSuccesses, e.st.ConsecutiveFailures = 0, 0
	e.st.LastError, e.st.EjectedUntil = "", nil
	e.until = time.Time{}
	e.pending = true
	return e.st, true
}

// Undrain returns a draining instance at key to the initial state at time
// at, from which its probes take it on. It returns the state to publish, or
// false when the instance is not draining.
func (t *Tracker) Undrain(key string, at time.Time) (events.HealthState, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.states[key]
	if !ok || e.st.State != events.HealthDraining {
		return events.HealthState{}, false
	}
	e.st.State, e.st.Since = t.initial, at
	e.st.ConsecutiveSuccesses, e.st.ConsecutiveFailures = 0, 0
	e.pending = true
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
