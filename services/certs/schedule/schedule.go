// Package schedule decides when the certs issuer acts: when a certificate
// is renewed (inside the CA's ACME Renewal Information window, else when a
// third of its lifetime remains), how long it waits after a failure
// (exponential back-off with jitter), and how many failures a domain may
// have in an hour (the failure budget, under Let's Encrypt's limits).
package schedule

import (
	"math/rand/v2"
	"slices"
	"time"
)

// RenewAt is when a certificate valid from notBefore to notAfter is
// renewed without renewal information from its CA: when a third of its
// lifetime remains.
func RenewAt(notBefore, notAfter time.Time) time.Time {
	return notAfter.Add(-notAfter.Sub(notBefore) / 3)
}

// Window is a CA's suggested renewal window (RFC 9773, ACME Renewal
// Information).
type Window struct {
	Start, End time.Time
}

// Valid reports whether the window is usable: its end after its start.
func (w Window) Valid() bool { return !w.Start.IsZero() && w.End.After(w.Start) }

// Contains reports whether t falls inside the window.
func (w Window) Contains(t time.Time) bool { return !t.Before(w.Start) && !t.After(w.End) }

// Pick is a uniformly random time in the window, as RFC 9773 section 4.2
// recommends; a time already past becomes now. u is a random number in
// [0, 1) (rand.Float64 when nil).
func (w Window) Pick(now time.Time, u func() float64) time.Time {
	if u == nil {
		u = rand.Float64
	}
	t := w.Start
	if span := w.End.Sub(w.Start); span > 0 {
		t = t.Add(time.Duration(u() * float64(span)))
	}
	if t.Before(now) {
		return now
	}
	return t
}

// Backoff is the wait before retrying after consecutive failures: Base
// after the first, doubling up to Max, each wait shortened by a random
// share of up to Jitter (0 to 1) so replicas and domains spread out.
type Backoff struct {
	Base, Max time.Duration
	Jitter    float64
}

// Delay is the wait after the n-th consecutive failure (n ≥ 1). u is a
// random number in [0, 1) (rand.Float64 when nil).
func (b Backoff) Delay(n int, u func() float64) time.Duration {
	if u == nil {
		u = rand.Float64
	}
	d := b.Base
	for i := 1; i < n && d < b.Max; i++ {
		d *= 2
	}
	d = min(d, b.Max)
	j := min(max(b.Jitter, 0), 1)
	return d - time.Duration(j*u()*float64(d))
}

// Budget bounds failed attempts per domain: at most Max within any Per
// (Let's Encrypt allows 5 failed validations per hostname per hour).
type Budget struct {
	Max int
	Per time.Duration
}

// Failures is the record of one domain's recent failed attempts.
type Failures struct {
	// Consecutive counts failures since the last success.
	Consecutive int
	// At holds the times of the failures within the budget's period.
	At []time.Time
}

// Fail records a failure at now, forgetting those older than the budget's
// period.
func (f *Failures) Fail(now time.Time, b Budget) {
	f.Consecutive++
	f.forget(now, b)
	f.At = append(f.At, now)
}

// Succeed clears the consecutive failures; the budget keeps its record.
func (f *Failures) Succeed() { f.Consecutive = 0 }

func (f *Failures) forget(now time.Time, b Budget) {
	f.At = slices.DeleteFunc(f.At, func(t time.Time) bool { return !t.Add(b.Per).After(now) })
}

// Allowed is the earliest time from now on when another attempt stays in
// the budget: now itself while fewer than Max failures fall within the
// period, else when the oldest that counts leaves it.
func (f *Failures) Allowed(now time.Time, b Budget) time.Time {
	f.forget(now, b)
	if b.Max <= 0 || len(f.At) < b.Max {
		return now
	}
	return f.At[len(f.At)-b.Max].Add(b.Per)
}

// NextAttempt is when to try again after the failures recorded so far:
// the back-off after the consecutive failures, and never before the
// budget allows.
func NextAttempt(now time.Time, f *Failures, bo Backoff, b Budget, u func() float64) time.Time {
	next := now.Add(bo.Delay(max(f.Consecutive, 1), u))
	if allowed := f.Allowed(now, b); allowed.After(next) {
		return allowed
	}
	return next
}
