// Package outbox publishes routing.changed.<app> from the apps bucket: it
// watches every KV update (puts, deletes and purges) and publishes the whole
// resolved state of the app with the entry's revision. The envelope id is
// derived from (app, revision), so several replicas, or a restart that sees
// the same revision again, are de-duplicated by JetStream.
package outbox

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/orchestry/orchestry/pkg/events"
	"github.com/orchestry/orchestry/services/routing/spec"
)

// Source is the CloudEvents source of routing's events.
const Source = "routing"

// Watch opens the watch of kv that Run publishes from. Routing opens it
// before it takes any write, so that no revision written after the stored
// ones is skipped (a watch replays only the latest revision per key).
func Watch(ctx context.Context, kv jetstream.KeyValue) (jetstream.KeyWatcher, error) {
	w, err := kv.WatchAll(ctx)
	if err != nil {
		return nil, fmt.Errorf("outbox: watch %s: %w", events.BucketApps, err)
	}
	return w, nil
}

// Run publishes one RoutingState per update of w until ctx ends, then
// stops w. Publishing is retried until it succeeds, so no revision w
// delivers is skipped.
func Run(ctx context.Context, js jetstream.JetStream, w jetstream.KeyWatcher, log zerolog.Logger) error {
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-w.Updates():
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("outbox: watcher of %s closed", events.BucketApps)
			}
			if e == nil {
				log.Debug().Msg("outbox caught up with stored apps")
				continue
			}
			publish(ctx, js, e, log)
		}
	}
}

// publish sends the state of one entry, retrying with back-off until it is
// stored or ctx ends.
func publish(ctx context.Context, js jetstream.JetStream, e jetstream.KeyValueEntry, log zerolog.Logger) {
	app, rev := e.Key(), e.Revision()
	env, err := Envelope(e)
	if err != nil {
		// Never happens for records written by routing; skip rather than block.
		log.Error().Err(err).Str("app", app).Uint64("revision", rev).Msg("outbox cannot build routing state")
		return
	}
	delay := 50 * time.Millisecond
	for {
		_, err := events.PublishEnvelope(ctx, js, events.RoutingChanged(app), env)
		if err == nil {
			log.Info().Str("app", app).Uint64("revision", rev).Str("operation", e.Operation().String()).Msg("routing changed published")
			return
		}
		if ctx.Err() != nil {
			return
		}
		log.Warn().Err(err).Str("app", app).Uint64("revision", rev).Dur("retry_in", delay).Msg("routing changed publish failed")
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		delay = min(delay*2, 5*time.Second)
	}
}

// Envelope builds the routing.changed envelope of one KV entry, with the
// deterministic id routing-<app>-<revision>.
func Envelope(e jetstream.KeyValueEntry) (events.Envelope, error) {
	app, rev := e.Key(), e.Revision()
	var st events.RoutingState
	switch e.Operation() {
	case jetstream.KeyValueDelete, jetstream.KeyValuePurge:
		st = events.RoutingState{App: events.App{Metadata: events.Metadata{Name: app}}, Deleted: true, Revision: rev}
	default:
		var rec events.AppRecord
		if err := json.Unmarshal(e.Value(), &rec); err != nil {
			return events.Envelope{}, fmt.Errorf("outbox %s: decode revision %d: %w", app, rev, err)
		}
		st = State(rec, rev)
	}
	env, err := events.NewEnvelope(Source, events.RoutingChanged(app), st)
	if err != nil {
		return events.Envelope{}, fmt.Errorf("outbox %s: revision %d: %w", app, rev, err)
	}
	env.ID = fmt.Sprintf("routing-%s-%d", app, rev)
	return env, nil
}

// State is the resolved routing state of a stored record at revision rev,
// with routing's auto choice applied.
func State(rec events.AppRecord, rev uint64) events.RoutingState {
	ins := rec.Instances
	if ins == nil {
		ins = []events.Instance{}
	}
	st := events.RoutingState{App: spec.Resolve(rec.App), Instances: ins, Revision: rev}
	if rec.Auto != nil && spec.ChosenFromTraffic(rec.App) {
		st.App.Spec.LBMethod = rec.Auto.Method
		st.Auto = rec.Auto
	}
	return st
}
