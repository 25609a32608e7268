package health

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/orchestry/orchestry/pkg/events"
)

// follow consumes filter on stream with an ordered consumer from deliver on
// and hands each decoded event to handle. An event that does not decode is
// logged, answered with a rejection and changes nothing.
func (s *Service) follow(ctx context.Context, stream, filter string, deliver jetstream.DeliverPolicy,
	handle func(context.Context, events.Event)) (jetstream.ConsumeContext, error) {
	cons, err := s.js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{filter},
		DeliverPolicy:  deliver,
	})
	if err != nil {
		return nil, fmt.Errorf("health: follow %s: %w", stream, err)
	}
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		ev, err := events.Decode(msg.Subject(), msg.Data())
		if err != nil {
			s.log.Warn().Err(err).Str("subject", msg.Subject()).Msg("event rejected")
			if errors.Is(err, events.ErrRejected) {
				if rerr := events.Reject(ctx, s.js, s.source, msg.Subject(), msg.Data(), err); rerr != nil {
					s.log.Error().Err(rerr).Msg("publish rejection")
				}
			}
			return
		}
		handle(ctx, ev)
	})
	if err != nil {
		return nil, fmt.Errorf("health: follow %s: %w", stream, err)
	}
	return cc, nil
}
