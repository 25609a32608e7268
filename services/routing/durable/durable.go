// Package durable runs routing's durable JetStream consumers: one shared by
// all routing replicas per kind of input, each message settled by its
// handler.
package durable

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/orchestry/orchestry/pkg/events"
)

// Consume creates (or updates) the durable consumer cfg on stream and
// hands each message to handle until ctx ends. Pull requests carry
// events.FollowHeartbeat, so when the consumer's leader moves to another
// NATS server (its server died) the pulls are renewed within seconds
// rather than at the library's 30 s expiry; trouble, when set, is told of
// such consumer errors.
func Consume(ctx context.Context, js jetstream.JetStream, stream string, cfg jetstream.ConsumerConfig,
	handle func(context.Context, jetstream.Msg), trouble func(error)) error {
	cons, err := js.CreateOrUpdateConsumer(ctx, stream, cfg)
	if err != nil {
		return fmt.Errorf("consumer %s on %s: %w", cfg.Durable, stream, err)
	}
	cc, err := cons.Consume(func(msg jetstream.Msg) { handle(ctx, msg) },
		jetstream.PullHeartbeat(events.FollowHeartbeat),
		jetstream.PullExpiry(5*events.FollowHeartbeat),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			if trouble != nil {
				trouble(fmt.Errorf("consumer %s: %w", cfg.Durable, err))
			}
		}))
	if err != nil {
		return fmt.Errorf("consume %s: %w", cfg.Durable, err)
	}
	<-ctx.Done()
	cc.Stop()
	return nil
}
