package health

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/orchestry/orchestry/pkg/events"
)

// follow consumes filter on stream from deliver on (events.Follow) and
// hands each decoded event to handle. An event that does not decode is
// logged, answered with a rejection and changes nothing.
func (s *Service) follow(ctx context.Context, stream, filter string, deliver jetstream.DeliverPolicy,
	handle func(context.Context, events.Event)) (*events.Follower, error) {
	f, err := events.Follow(ctx, s.js, events.FollowOptions{
		Stream: stream, Subjects: []string{filter}, Deliver: deliver, Source: s.source,
		Rejected: func(subject string, err error) {
			s.log.Warn().Err(err).Str("subject", subject).Msg("event rejected")
		},
		Trouble: func(err error) { s.log.Warn().Err(err).Msg("event consumer") },
	}, func(ev events.Event) { handle(ctx, ev) })
	if err != nil {
		return nil, fmt.Errorf("health: %w", err)
	}
	return f, nil
}
