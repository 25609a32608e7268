// Package certview keeps what the certs service last said about each
// domain, read from the CERTS stream (cert.issued and cert.failed, the
// last of each per domain), for GET /v1/certs. It sees certificate
// summaries only: routing never reads the certs bucket, which holds the
// private keys.
package certview

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/orchestry/orchestry/pkg/events"
)

// Domain is what is known of one domain's certificate.
type Domain struct {
	// Issued is the last certificate announced, nil when none was.
	Issued *events.Certificate
	// IssuedAt is when it was announced.
	IssuedAt time.Time
	// Failure is the last failure announced, nil when none was.
	Failure *events.CertFailure
	// FailedAt is when it was announced.
	FailedAt time.Time
}

// Certificate states shown per domain.
const (
	// StatePending: no certificate and no failure yet.
	StatePending = "pending"
	// StateValid: a certificate valid now, and no failure since.
	StateValid = "valid"
	// StateRenewalFailing: a certificate valid now, but the last attempt
	// to replace it failed.
	StateRenewalFailing = "renewal_failing"
	// StateFailed: no valid certificate, and the last attempt failed.
	StateFailed = "failed"
	// StateExpired: the last certificate has expired and nothing failed
	// since.
	StateExpired = "expired"
)

// State is the domain's state at now.
func (d Domain) State(now time.Time) string {
	valid := d.Issued != nil && !now.Before(d.Issued.NotBefore) && now.Before(d.Issued.NotAfter)
	failedSince := d.Failure != nil && d.FailedAt.After(d.IssuedAt)
	switch {
	case valid && failedSince:
		return StateRenewalFailing
	case valid:
		return StateValid
	case failedSince:
		return StateFailed
	case d.Issued != nil:
		return StateExpired
	}
	return StatePending
}

// View holds the last news per domain. It is safe for concurrent use; the
// zero value is ready.
type View struct {
	mu      sync.RWMutex
	domains map[string]Domain
}

// Lookup returns what is known of domain.
func (v *View) Lookup(domain string) (Domain, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	d, ok := v.domains[domain]
	return d, ok
}

// Domains returns every domain the certs service spoke of.
func (v *View) Domains() map[string]Domain {
	v.mu.RLock()
	defer v.mu.RUnlock()
	out := make(map[string]Domain, len(v.domains))
	for k, d := range v.domains {
		out[k] = d
	}
	return out
}

// Observe records one event published at t; an older one than the
// domain's last of its kind changes nothing.
func (v *View) Observe(p events.Payload, t time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.domains == nil {
		v.domains = map[string]Domain{}
	}
	switch p := p.(type) {
	case events.Certificate:
		d := v.domains[p.Domain]
		if t.Before(d.IssuedAt) {
			return
		}
		d.Issued, d.IssuedAt = &p, t
		v.domains[p.Domain] = d
	case events.CertFailure:
		d := v.domains[p.Domain]
		if t.Before(d.FailedAt) {
			return
		}
		d.Failure, d.FailedAt = &p, t
		v.domains[p.Domain] = d
	}
}

// Run follows the CERTS stream from the last event per subject until ctx
// ends, with an ordered consumer.
func (v *View) Run(ctx context.Context, js jetstream.JetStream, log zerolog.Logger) error {
	f, err := events.Follow(ctx, js, events.FollowOptions{
		Stream: events.StreamCerts, Subjects: []string{events.CertIssuedWildcard, events.CertFailedWildcard}, Deliver: jetstream.DeliverLastPerSubjectPolicy,
		Rejected: func(subject string, err error) {
			log.Warn().Err(err).Str("subject", subject).Msg("certificate event ignored")
		},
		Trouble: func(err error) { log.Warn().Err(err).Msg("event consumer") },
	}, func(ev events.Event) {
		v.Observe(ev.Payload, ev.Envelope.Time)
	})
	if err != nil {
		return fmt.Errorf("certview: %w", err)
	}
	<-ctx.Done()
	f.Stop()
	return nil
}
