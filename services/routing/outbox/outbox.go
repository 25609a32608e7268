// Package outbox publishes routing.changed.<app> from the apps bucket: it
// follows every KV update (puts, deletes and purges) and publishes the whole
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

// Start follows every update of the apps bucket (events.WatchKV: the
// latest revision of each app, then each change) and publishes each one,
// in order, until ctx ends or the returned follower is stopped. Routing
// starts it before it takes any write, so that no revision written after
// the stored ones is skipped. Publishing is retried until it succeeds, so
// no revision is skipped either.
func Start(ctx context.Context, js jetstream.JetStream, log zerolog.Logger) (*events.Follower, error) {
	f, err := events.WatchKV(ctx, js, events.BucketApps, events.FollowOptions{
		Trouble: func(err error) { log.Warn().Err(err).Msg("outbox watch") },
	}, func(u events.KVUpdate) { publish(ctx, js, u, log) })
	if err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	return f, nil
}

// publish sends the state of one update, retrying with back-off until it
// is stored or ctx ends.
func publish(ctx context.Context, js jetstream.JetStream, u events.KVUpdate, log zerolog.Logger) {
	env, err := Envelope(u)
	if err != nil {
		// Never happens for records written by routing; skip rather than block.
		log.Error().Err(err).Str("app", u.Key).Uint64("revision", u.Revision).Msg("outbox cannot build routing state")
		return
	}
	delay := 50 * time.Millisecond
	for {
		_, err := events.PublishEnvelope(ctx, js, events.RoutingChanged(u.Key), env)
		if err == nil {
			log.Info().Str("app", u.Key).Uint64("revision", u.Revision).Bool("deleted", u.Deleted).Msg("routing changed published")
			return
		}
		if ctx.Err() != nil {
			return
		}
		log.Warn().Err(err).Str("app", u.Key).Uint64("revision", u.Revision).Dur("retry_in", delay).Msg("routing changed publish failed")
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

// Envelope builds the routing.changed envelope of one update of the apps
// bucket, with the deterministic id routing-<app>-<revision>.
func Envelope(u events.KVUpdate) (events.Envelope, error) {
	app, rev := u.Key, u.Revision
	var st events.RoutingState
	if u.Deleted {
		st = events.RoutingState{App: events.App{Metadata: events.Metadata{Name: app}}, Deleted: true, Revision: rev}
	} else {
		var rec events.AppRecord
		if err := json.Unmarshal(u.Value, &rec); err != nil {
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
