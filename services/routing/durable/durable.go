// Package durable runs routing's durable JetStream consumers: one shared by
// all routing replicas per kind of input, each message settled by its
// handler.
package durable

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// Consume creates (or updates) the durable consumer cfg on stream and
// hands each message to handle until ctx ends.
func Consume(ctx context.Context, js jetstream.JetStream, stream string, cfg jetstream.ConsumerConfig, handle func(context.Context, jetstream.Msg)) error {
	cons, err := js.CreateOrUpdateConsumer(ctx, stream, cfg)
	if err != nil {
		return fmt.Errorf("consumer %s on %s: %w", cfg.Durable, stream, err)
	}
	cc, err := cons.Consume(func(msg jetstream.Msg) { handle(ctx, msg) })
	if err != nil {
		return fmt.Errorf("consume %s: %w", cfg.Durable, err)
	}
	<-ctx.Done()
	cc.Stop()
	return nil
}
