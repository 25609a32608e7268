package certs

import (
	"context"
	"fmt"
	"log"
	"slices"
	"strings"

	legolog "github.com/go-acme/lego/v4/log"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/orchestry/orchestry/pkg/events"
)

// followRouting replays the last routing.changed per app and then follows
// new ones (events.Follow; a restarted replica replays again).
func (s *Service) followRouting(ctx context.Context) (*events.Follower, error) {
	f, err := events.Follow(ctx, s.js, events.FollowOptions{
		Stream: events.StreamRouting, Subjects: []string{events.RoutingChangedWildcard},
		Deliver: jetstream.DeliverLastPerSubjectPolicy, Source: s.source,
		Rejected: func(subject string, err error) {
			s.log.Warn().Err(err).Str("subject", subject).Msg("event rejected")
		},
		Trouble: func(err error) { s.log.Warn().Err(err).Msg("event consumer") },
	}, func(ev events.Event) {
		if rs, ok := ev.Payload.(events.RoutingState); ok {
			s.applyRouting(rs)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("certs: %w", err)
	}
	return f, nil
}

// applyRouting records whether the app wants a certificate, and for which
// domain, and wakes the issuer when that changed.
func (s *Service) applyRouting(rs events.RoutingState) {
	app := rs.App.Metadata.Name
	if !s.gate.Admit(app, rs.Revision) {
		return
	}
	var domain string
	if net := rs.App.Spec.Networking; !rs.Deleted && net.SSL.Enabled && net.Domain != "" {
		domain = net.Domain
	}
	s.mu.Lock()
	changed := false
	for d, apps := range s.wanted {
		if apps[app] && d != domain {
			delete(apps, app)
			if len(apps) == 0 {
				delete(s.wanted, d)
			}
			changed = true
		}
	}
	if domain != "" && !s.wanted[domain][app] {
		if s.wanted[domain] == nil {
			s.wanted[domain] = map[string]bool{}
		}
		s.wanted[domain][app] = true
		changed = true
	}
	s.mu.Unlock()
	if changed {
		s.log.Info().Str("app", app).Str("domain", domain).Uint64("revision", rs.Revision).Msg("wanted domains changed")
		s.wake()
	}
}

// Wanted returns the domains that want a certificate, sorted.
func (s *Service) Wanted() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.wanted))
	for d := range s.wanted {
		out = append(out, d)
	}
	slices.Sort(out)
	return out
}

func (s *Service) wanting(domain string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.wanted[domain]) > 0
}

func (s *Service) wake() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// routeLegoLog sends lego's own log lines to log at debug level (lego logs
// through a package-level logger).
func routeLegoLog(l zerolog.Logger) {
	legolog.Logger = log.New(legoWriter{l.With().Str("component", "lego").Logger()}, "", 0)
}

type legoWriter struct{ log zerolog.Logger }

func (w legoWriter) Write(p []byte) (int, error) {
	w.log.Debug().Msg(strings.TrimSpace(string(p)))
	return len(p), nil
}
