package metrics

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/orchestry/orchestry/pkg/events"
)

// follow replays the last event per subject of filter on stream and then
// follows new ones (events.Follow): a refused event is logged and answered
// with a rejection; an accepted one goes to apply with whether it was
// published before the service started.
func (s *Service) follow(ctx context.Context, stream, filter string, apply func(ev events.Event, replayed bool)) (*events.Follower, error) {
	f, err := events.Follow(ctx, s.js, events.FollowOptions{
		Stream: stream, Subjects: []string{filter}, Deliver: jetstream.DeliverLastPerSubjectPolicy, Source: Source,
		Rejected: func(subject string, err error) {
			s.log.Warn().Err(err).Str("subject", subject).Msg("event rejected")
		},
		Trouble: func(err error) { s.log.Warn().Err(err).Msg("event consumer") },
	}, func(ev events.Event) { apply(ev, ev.Envelope.Time.Before(s.started)) })
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	return f, nil
}

// followAll follows routing.changed (the known apps), config.rendered
// (reloads, convergence, status servers) and cert.issued (expiry).
func (s *Service) followAll(ctx context.Context) (stop func(), err error) {
	var ccs []*events.Follower
	stop = func() {
		for _, cc := range ccs {
			cc.Stop()
		}
	}
	for _, f := range []struct {
		stream, filter string
		apply          func(events.Event, bool)
	}{
		{events.StreamRouting, events.RoutingChangedWildcard, func(ev events.Event, _ bool) { s.handleRouting(ev) }},
		{events.StreamConfig, events.ConfigRenderedWildcard, func(ev events.Event, replayed bool) {
			if r, ok := ev.Payload.(events.RenderReport); ok {
				s.export.Fleet.Report(r, replayed)
			}
		}},
		{events.StreamCerts, events.CertIssuedWildcard, func(ev events.Event, _ bool) {
			if c, ok := ev.Payload.(events.Certificate); ok {
				s.export.Fleet.Certificate(c)
			}
		}},
	} {
		cc, err := s.follow(ctx, f.stream, f.filter, f.apply)
		if err != nil {
			stop()
			return nil, err
		}
		ccs = append(ccs, cc)
	}
	return stop, nil
}

// handleRouting applies one routing.changed: the app becomes known with its
// instances' addresses, or is forgotten when deleted.
func (s *Service) handleRouting(ev events.Event) {
	rs, ok := ev.Payload.(events.RoutingState)
	if !ok {
		return
	}
	app := rs.App.Metadata.Name
	if !s.gate.Admit(app, rs.Revision) {
		return
	}
	if rs.Deleted {
		s.agg.RemoveApp(app)
		s.log.Info().Str("app", app).Uint64("revision", rs.Revision).Msg("app removed")
		return
	}
	addrs := make([]netip.AddrPort, 0, len(rs.Instances))
	for _, in := range rs.Instances {
		ip, err := netip.ParseAddr(in.IP)
		if err != nil || in.Port < 1 || in.Port > 65535 {
			continue // Decode checked both; never here
		}
		addrs = append(addrs, netip.AddrPortFrom(ip, uint16(in.Port)))
	}
	s.agg.SetApp(app, addrs)
	s.log.Info().Str("app", app).Uint64("revision", rs.Revision).Int("instances", len(addrs)).Msg("app updated")
}
