package metrics

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/orchestry/orchestry/pkg/events"
)

// followRouting replays the last routing.changed per app and then follows
// new ones with an ordered consumer, keeping the set of known apps and
// their instances' addresses.
func (s *Service) followRouting(ctx context.Context) (jetstream.ConsumeContext, error) {
	cons, err := s.js.OrderedConsumer(ctx, events.StreamRouting, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{events.RoutingChangedWildcard},
		DeliverPolicy:  jetstream.DeliverLastPerSubjectPolicy,
	})
	if err != nil {
		return nil, fmt.Errorf("metrics: follow %s: %w", events.StreamRouting, err)
	}
	cc, err := cons.Consume(func(msg jetstream.Msg) { s.handleRouting(ctx, msg) })
	if err != nil {
		return nil, fmt.Errorf("metrics: follow %s: %w", events.StreamRouting, err)
	}
	return cc, nil
}

// handleRouting applies one routing.changed: the app becomes known with its
// instances' addresses, or is forgotten when deleted. A refused event is
// logged, answered with a rejection and changes nothing.
func (s *Service) handleRouting(ctx context.Context, msg jetstream.Msg) {
	ev, err := events.Decode(msg.Subject(), msg.Data())
	if err != nil {
		s.log.Warn().Err(err).Str("subject", msg.Subject()).Msg("event rejected")
		if errors.Is(err, events.ErrRejected) {
			if rerr := events.Reject(ctx, s.js, Source, msg.Subject(), msg.Data(), err); rerr != nil {
				s.log.Error().Err(rerr).Msg("publish rejection")
			}
		}
		return
	}
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
