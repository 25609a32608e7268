package auto

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/orchestry/orchestry/pkg/events"
	"github.com/orchestry/orchestry/services/routing/durable"
	"github.com/orchestry/orchestry/services/routing/spec"
	"github.com/orchestry/orchestry/services/routing/store"
)

// Consumer is the durable name of the traffic consumer, shared by routing
// replicas.
const Consumer = "routing-auto"

// Follower applies traffic windows to the auto choices in the store.
type Follower struct {
	js    jetstream.JetStream
	store *store.Store
	log   zerolog.Logger

	mu     sync.Mutex // one window at a time: the damper counts streaks
	damper *Damper
}

// New returns a Follower choosing by th.
func New(js jetstream.JetStream, st *store.Store, th Thresholds, log zerolog.Logger) *Follower {
	return &Follower{js: js, store: st, damper: NewDamper(th), log: log.With().Str("component", "auto").Logger()}
}

// Run consumes new traffic windows with the durable consumer until ctx
// ends. Windows are figures of the moment: older ones are not replayed.
func (f *Follower) Run(ctx context.Context) error {
	err := durable.Consume(ctx, f.js, events.StreamMetrics, jetstream.ConsumerConfig{
		Durable:        Consumer,
		Description:    "routing: lb_method auto from traffic windows",
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        30 * time.Second,
		MaxAckPending:  1,
		DeliverPolicy:  jetstream.DeliverNewPolicy,
		FilterSubjects: []string{events.MetricsUpstreamWildcard},
	}, f.handle, func(err error) { f.log.Warn().Err(err).Msg("event consumer") })
	if err != nil {
		return fmt.Errorf("auto: %w", err)
	}
	return nil
}

func (f *Follower) handle(ctx context.Context, msg jetstream.Msg) {
	ev, err := events.Decode(msg.Subject(), msg.Data())
	if err != nil {
		f.log.Warn().Err(err).Str("subject", msg.Subject()).Msg("traffic window ignored")
		_ = msg.Term()
		return
	}
	m, ok := ev.Payload.(events.UpstreamMetrics)
	if !ok {
		_ = msg.Term()
		return
	}
	changed, choice, err := f.Apply(ctx, m, time.Now().UTC())
	switch {
	case errors.Is(err, store.ErrNotFound):
		f.damper.Forget(m.App)
		_ = msg.Ack()
	case err != nil && ctx.Err() != nil:
		_ = msg.Nak() // stopping
	case err != nil:
		f.log.Error().Err(err).Str("app", m.App).Msg("apply traffic window")
		_ = msg.NakWithDelay(time.Second)
	default:
		if changed {
			f.log.Info().Str("app", m.App).Str("method", choice.Method).Interface("weights", choice.Weights).
				Str("reason", choice.Reason).Msg("auto method changed")
		}
		_ = msg.Ack()
	}
}

// Apply feeds window m to its app's choice at now and writes a new choice
// when the damper lets one through.
func (f *Follower) Apply(ctx context.Context, m events.UpstreamMetrics, now time.Time) (changed bool, choice events.AutoChoice, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, err := f.store.Get(ctx, m.App)
	if err != nil {
		return false, choice, err
	}
	rec := e.Record
	if !spec.ChosenFromTraffic(rec.App) {
		f.damper.Forget(m.App)
		return false, choice, nil
	}
	choice, ok := f.damper.Next(m.App, rec.Auto, rec.Instances, m, now)
	if !ok {
		return false, choice, nil
	}
	changed, err = f.store.UpdateAuto(ctx, m.App, func(now events.AppRecord) (*events.AutoChoice, bool) {
		// Written only over the choice it was made after.
		return &choice, spec.ChosenFromTraffic(now.App) && Same(now.Auto, rec.Auto)
	})
	return changed, choice, err
}
