// Package trafficview keeps the latest traffic window of every app, read
// from the METRICS stream (metrics.upstream.<app>), for
// GET /v1/apps/{name}/metrics.
package trafficview

import (
	"context"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/orchestry/orchestry/pkg/events"
)

// View holds the newest window per app. It is safe for concurrent use; the
// zero value is ready.
type View struct {
	mu   sync.RWMutex
	apps map[string]events.UpstreamMetrics
}

// Latest returns the newest window of app and whether there is one.
func (v *View) Latest(app string) (events.UpstreamMetrics, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	m, ok := v.apps[app]
	return m, ok
}

// Observe records m unless a window of the same app that starts as late or
// later is recorded. It reports whether m was kept.
func (v *View) Observe(m events.UpstreamMetrics) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.apps == nil {
		v.apps = map[string]events.UpstreamMetrics{}
	}
	if old, ok := v.apps[m.App]; ok && !m.WindowStart.After(old.WindowStart) {
		return false
	}
	v.apps[m.App] = m
	return true
}

// Run follows the METRICS stream from the last window per app until ctx
// ends, with an ordered consumer.
func (v *View) Run(ctx context.Context, js jetstream.JetStream, log zerolog.Logger) error {
	f, err := events.Follow(ctx, js, events.FollowOptions{
		Stream: events.StreamMetrics, Subjects: []string{events.MetricsUpstreamWildcard}, Deliver: jetstream.DeliverLastPerSubjectPolicy,
		Rejected: func(subject string, err error) {
			log.Warn().Err(err).Str("subject", subject).Msg("traffic window ignored")
		},
		Trouble: func(err error) { log.Warn().Err(err).Msg("event consumer") },
	}, func(ev events.Event) {
		if m, ok := ev.Payload.(events.UpstreamMetrics); ok {
			v.Observe(m)
		}
	})
	if err != nil {
		return fmt.Errorf("trafficview: %w", err)
	}
	<-ctx.Done()
	f.Stop()
	return nil
}
