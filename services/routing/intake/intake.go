// Package intake applies instance registrations and removals that any system
// publishes on instance.registered.<app> and instance.deregistered.<app>.
// It reads them with the durable consumer "routing-instances" (shared by all
// routing replicas), applies each exactly like the REST call, and acks only
// after the KV write. An event that cannot be applied is answered with a
// rejected.<subject> event and terminated, never half-applied.
package intake

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/orchestry/orchestry/pkg/events"
	"github.com/orchestry/orchestry/services/routing/durable"
	"github.com/orchestry/orchestry/services/routing/store"
)

// Consumer is the durable name of the instances consumer.
const Consumer = "routing-instances"

// By names routing in rejections.
const By = "routing"

// retryDelay is how long a message waits after a transient failure.
const retryDelay = time.Second

// Intake consumes instance events into the store.
type Intake struct {
	js    jetstream.JetStream
	store *store.Store
	log   zerolog.Logger
}

// New returns an Intake writing to st.
func New(js jetstream.JetStream, st *store.Store, log zerolog.Logger) *Intake {
	return &Intake{js: js, store: st, log: log}
}

// Run creates (or updates) the durable consumer and processes messages
// until ctx ends.
func (in *Intake) Run(ctx context.Context) error {
	err := durable.Consume(ctx, in.js, events.StreamInstances, jetstream.ConsumerConfig{
		Durable:        Consumer,
		Description:    "routing: apply instance registrations and removals",
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        30 * time.Second,
		DeliverPolicy:  jetstream.DeliverAllPolicy,
		FilterSubjects: []string{events.InstanceRegisteredWildcard, events.InstanceDeregisteredWildcard},
	}, in.handle, func(err error) { in.log.Warn().Err(err).Msg("event consumer") })
	if err != nil {
		return fmt.Errorf("intake: %w", err)
	}
	return nil
}

// handle applies one message and settles it.
func (in *Intake) handle(ctx context.Context, msg jetstream.Msg) {
	subject, raw := msg.Subject(), msg.Data()
	log := in.log.With().Str("subject", subject).Logger()
	err := in.Apply(ctx, subject, raw)
	switch {
	case err == nil:
		if err := msg.Ack(); err != nil {
			log.Warn().Err(err).Msg("ack failed; the event will be redelivered and applied idempotently")
		}
	case errors.Is(err, errRefused):
		log.Warn().Err(err).Msg("instance event rejected")
		if rerr := events.Reject(ctx, in.js, By, subject, raw, err); rerr != nil {
			log.Error().Err(rerr).Msg("publish rejection failed; retrying")
			_ = msg.NakWithDelay(retryDelay)
			return
		}
		if err := msg.Term(); err != nil {
			log.Warn().Err(err).Msg("term failed")
		}
	default:
		log.Error().Err(err).Dur("retry_in", retryDelay).Msg("instance event not applied; retrying")
		_ = msg.NakWithDelay(retryDelay)
	}
}

// errRefused marks a permanent refusal: the event is rejected, not retried.
var errRefused = errors.New("refused")

// Apply decodes and applies one instance event received on subject. A
// refusal (invalid event, unknown app, absent instance) is an error wrapping
// errRefused; any other error is transient.
func (in *Intake) Apply(ctx context.Context, subject string, raw []byte) error {
	ev, err := events.Decode(subject, raw)
	if err != nil {
		return fmt.Errorf("%w: %w", errRefused, err)
	}
	app := subject[strings.LastIndexByte(subject, '.')+1:]
	switch p := ev.Payload.(type) {
	case events.InstanceRegistration:
		rev, created, err := in.store.PutInstance(ctx, app, p.Instance)
		if err != nil {
			return refusal(err)
		}
		in.log.Info().Str("app", app).Str("instance", p.Instance.ID).Bool("created", created).Uint64("revision", rev).Str("event_id", ev.Envelope.ID).Msg("instance registered")
	case events.InstanceRemoval:
		rev, err := in.store.RemoveInstance(ctx, app, p.ID)
		if err != nil {
			return refusal(err)
		}
		in.log.Info().Str("app", app).Str("instance", p.ID).Uint64("revision", rev).Str("event_id", ev.Envelope.ID).Msg("instance deregistered")
	default:
		return fmt.Errorf("%w: %s is not an instance event", errRefused, ev.Envelope.Type)
	}
	return nil
}

// refusal marks store errors that REST answers with 404 as permanent.
func refusal(err error) error {
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrInstanceNotFound) {
		return fmt.Errorf("%w: %w", errRefused, err)
	}
	return err
}
