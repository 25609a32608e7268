package certs

import (
	"context"
	"crypto/x509"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/orchestry/orchestry/pkg/events"
	"github.com/orchestry/orchestry/services/certs/bundle"
	"github.com/orchestry/orchestry/services/certs/issue"
	"github.com/orchestry/orchestry/services/certs/schedule"
)

// maxWait bounds how long the issuer sleeps before it looks at a domain
// again, so a far renewal time is read afresh now and then.
const maxWait = time.Hour

// storeRetry is the wait after the certs bucket could not be read, which
// is no issuance failure.
const storeRetry = 5 * time.Second

// maxReason bounds a failure reason's length.
const maxReason = 1024

// domainState is the issuer's view of one domain while it leads.
type domainState struct {
	next     time.Time
	ariNext  time.Time
	inflight bool
	fails    schedule.Failures
}

// outcome is what one look at a domain came to.
type outcome struct {
	domain  string
	next    time.Time // when to look again (success or nothing to do)
	ariNext time.Time
	// failed is an issuance failure (counted, published); transient is
	// any other error (retried after storeRetry).
	failed, transient error
}

// lead issues and renews while this replica holds the lease; ctx ends the
// moment the lease is lost.
func (s *Service) lead(ctx context.Context) {
	s.log.Info().Msg("issuing")
	defer s.log.Info().Msg("no longer issuing")
	states := map[string]*domainState{}
	results := make(chan outcome)
	var wg sync.WaitGroup
	defer wg.Wait()
	inflight := 0
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		now := time.Now()
		wanted := s.Wanted()
		for _, d := range wanted {
			st := states[d]
			if st == nil {
				st = &domainState{next: now}
				states[d] = st
			}
			if st.inflight || now.Before(st.next) || inflight >= s.cfg.Concurrency {
				continue
			}
			st.inflight = true
			inflight++
			ariDue := !now.Before(st.ariNext)
			consecutive := st.fails.Consecutive
			wg.Go(func() {
				o := s.attempt(ctx, d, ariDue, consecutive)
				select {
				case results <- o:
				case <-ctx.Done():
				}
			})
		}
		wake := now.Add(maxWait)
		for d, st := range states {
			if !slices.Contains(wanted, d) && !st.inflight {
				delete(states, d) // no longer wanted: not renewed
				continue
			}
			if !st.inflight && st.next.Before(wake) {
				wake = st.next
			}
		}
		timer.Reset(max(time.Until(wake), 0))
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
		case <-timer.C:
		case o := <-results:
			inflight--
			st := states[o.domain]
			if st == nil {
				continue
			}
			st.inflight = false
			s.settle(ctx, st, o)
		}
	}
}

// settle applies an outcome to the domain's state: on a failure it counts
// it, picks the next attempt and publishes cert.failed.
func (s *Service) settle(ctx context.Context, st *domainState, o outcome) {
	now := time.Now()
	if !o.ariNext.IsZero() {
		st.ariNext = o.ariNext
	}
	switch {
	case o.failed != nil:
		st.fails.Fail(now, s.budget)
		st.next = schedule.NextAttempt(now, &st.fails, s.backoff, s.budget, nil)
		reason := o.failed.Error()
		if len(reason) > maxReason {
			reason = reason[:maxReason]
		}
		s.prom.failed.Inc()
		s.log.Warn().Str("domain", o.domain).Str("reason", reason).Int("consecutive", st.fails.Consecutive).
			Time("next_attempt", st.next).Msg("certificate failed")
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, err := events.Publish(pctx, s.js, s.source, events.CertFailed(o.domain),
			events.CertFailure{Domain: o.domain, Reason: reason, NextAttempt: st.next.UTC()}); err != nil {
			s.log.Error().Err(err).Str("domain", o.domain).Msg("publish cert.failed")
		}
	case o.transient != nil:
		st.next = now.Add(storeRetry)
		if ctx.Err() == nil {
			s.log.Warn().Err(o.transient).Str("domain", o.domain).Msg("certificate check")
		}
	default:
		st.fails.Succeed()
		st.next = o.next
	}
}

// attempt looks at one domain: it issues a certificate when there is none
// usable, when the renewal time has come or when the CA's renewal
// information says so, and otherwise says when to look again.
func (s *Service) attempt(ctx context.Context, domain string, ariDue bool, consecutive int) outcome {
	now := time.Now()
	o := outcome{domain: domain}
	iss := s.issuerFor(domain)
	old, ok, err := s.store.Get(ctx, domain)
	if err != nil {
		o.transient = err
		return o
	}
	var leaf, parent *x509.Certificate
	reason := "no certificate"
	if ok {
		reason = ""
		chain, err := bundle.Chain(old.CertPEM)
		switch {
		case err != nil || !slices.Contains(chain[0].DNSNames, domain):
			reason = "stored certificate unusable"
		case old.Provider != iss.Provider():
			reason = "provider changed to " + iss.Provider()
		default:
			leaf = chain[0]
			if len(chain) > 1 {
				parent = chain[1]
			}
		}
	}
	var replaces string
	if leaf != nil {
		renewAt := old.RenewAt
		if ariDue {
			ri, err := iss.RenewalInfo(ctx, leaf, parent)
			o.ariNext = now.Add(s.cfg.ARIRecheck)
			switch {
			case err != nil:
				s.log.Debug().Err(err).Str("domain", domain).Msg("renewal information")
				o.ariNext = now.Add(min(s.cfg.ARIRecheck, s.cfg.RetryBase))
			case ri != nil && ri.Window.Valid():
				if ri.RetryAfter > 0 {
					o.ariNext = now.Add(min(ri.RetryAfter, s.cfg.ARIRecheck))
				}
				if consecutive == 0 {
					replaces = ri.CertID
				}
				if !ri.Window.Contains(renewAt) {
					renewAt = ri.Window.Pick(now, nil)
					s.log.Info().Str("domain", domain).Time("window_start", ri.Window.Start).
						Time("window_end", ri.Window.End).Time("renew_at", renewAt).Msg("renewal window moved")
				}
			}
		}
		if now.Before(renewAt) && now.Before(leaf.NotAfter) {
			if !renewAt.Equal(old.RenewAt) {
				old.RenewAt = renewAt.UTC()
				if err := s.store.Put(ctx, old); err != nil {
					o.transient = err
					return o
				}
			}
			o.next = renewAt
			if !o.ariNext.IsZero() && o.ariNext.Before(renewAt) {
				o.next = o.ariNext
			}
			return o
		}
		reason = "renewal due"
	}
	if err := s.issue(ctx, iss, domain, replaces, reason); err != nil {
		if ctx.Err() != nil {
			o.transient = err // the lease is gone: not this domain's failure
			return o
		}
		o.failed = err
		return o
	}
	o.next = time.Now() // look again at once: reads the renewal time stored
	return o
}

// issue obtains a certificate for domain, stores it and publishes
// cert.issued. Nothing is stored once ctx has ended (the lease is lost).
func (s *Service) issue(ctx context.Context, iss issue.Issuer, domain, replaces, why string) error {
	s.log.Info().Str("domain", domain).Str("provider", iss.Provider()).Str("why", why).Msg("issuing certificate")
	actx, cancel := context.WithTimeout(ctx, s.cfg.AttemptTimeout)
	defer cancel()
	got, err := iss.Obtain(actx, issue.Request{Domain: domain, Replaces: replaces})
	if err != nil {
		return err
	}
	chain, err := bundle.Chain(string(got.ChainPEM))
	if err != nil {
		return err
	}
	leaf := chain[0]
	renewAt := schedule.RenewAt(leaf.NotBefore, leaf.NotAfter)
	var parent *x509.Certificate
	if len(chain) > 1 {
		parent = chain[1]
	}
	ri, err := iss.RenewalInfo(actx, leaf, parent)
	if err != nil {
		s.log.Debug().Err(err).Str("domain", domain).Msg("renewal information")
	} else if ri != nil && ri.Window.Valid() {
		renewAt = ri.Window.Pick(time.Now(), nil)
	}
	b, err := bundle.Make(domain, iss.Provider(), got.ChainPEM, got.KeyPEM, renewAt, time.Now())
	if err != nil {
		return err
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if !s.wanting(domain) {
		return nil // no longer wanted while it was issued: not stored
	}
	if err := s.store.Put(ctx, b); err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	s.prom.issued.Inc()
	pctx, pcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer pcancel()
	if _, err := events.Publish(pctx, s.js, s.source, events.CertIssued(domain), b.Certificate); err != nil {
		// Stored all the same: the renderers read the bucket.
		s.log.Error().Err(err).Str("domain", domain).Msg("publish cert.issued")
	}
	s.log.Info().Str("domain", domain).Str("serial", b.Serial).Str("issuer", b.Issuer).
		Time("not_after", b.NotAfter).Time("renew_at", b.RenewAt).Msg("certificate issued")
	return nil
}
