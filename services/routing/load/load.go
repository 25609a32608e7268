// Package load turns the CPU and memory figures other systems publish on
// instance.stats.<app> into each instance's load band (events.Instance
// LoadBand), which the renderer turns into weights. Bands have hysteresis
// and a minimum interval between changes, so a noisy stream of figures
// changes the config (and reloads NGINX) at most once per real change.
package load

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

// Consumer is the durable name of the stats consumer, shared by routing
// replicas.
const Consumer = "routing-stats"

// bounds are the lowest load (the larger of CPU and memory percent) of
// bands 2, 3 and 4; band 1 is below 50%.
var bounds = [events.MaxLoadBand - 1]float64{50, 70, 85}

// Margin is how far past a band boundary the load must go for the band to
// change: up at bound+Margin, down at bound-Margin.
const Margin = 5.0

// Band is the load band after prev (0: none yet) for a report of cpu and
// mem percent.
func Band(prev int, cpu, mem float64) int {
	load := max(cpu, mem)
	raw := 1
	for _, b := range bounds {
		if load >= b {
			raw++
		}
	}
	if prev == 0 || raw == prev {
		return raw
	}
	// Move as far as the load clears each boundary by the margin.
	band := prev
	for band < raw && load >= bounds[band-1]+Margin {
		band++
	}
	for band > raw && load <= bounds[band-2]-Margin {
		band--
	}
	return band
}

// Follower applies stats reports to the store.
type Follower struct {
	js          jetstream.JetStream
	store       *store.Store
	minInterval time.Duration
	log         zerolog.Logger
}

// New returns a Follower that changes an instance's band at most once per
// minInterval.
func New(js jetstream.JetStream, st *store.Store, minInterval time.Duration, log zerolog.Logger) *Follower {
	return &Follower{js: js, store: st, minInterval: minInterval, log: log.With().Str("component", "load").Logger()}
}

// Run consumes new stats reports with the durable consumer until ctx ends.
// Reports are figures of the moment: older ones are not replayed.
func (f *Follower) Run(ctx context.Context) error {
	err := durable.Consume(ctx, f.js, events.StreamStats, jetstream.ConsumerConfig{
		Durable:        Consumer,
		Description:    "routing: load bands from instance stats",
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        30 * time.Second,
		DeliverPolicy:  jetstream.DeliverNewPolicy,
		FilterSubjects: []string{events.InstanceStatsWildcard},
	}, f.handle, func(err error) { f.log.Warn().Err(err).Msg("event consumer") })
	if err != nil {
		return fmt.Errorf("load: %w", err)
	}
	return nil
}

func (f *Follower) handle(ctx context.Context, msg jetstream.Msg) {
	ev, err := events.Decode(msg.Subject(), msg.Data())
	if err != nil {
		f.log.Warn().Err(err).Str("subject", msg.Subject()).Msg("stats report rejected")
		if errors.Is(err, events.ErrRejected) {
			if rerr := events.Reject(ctx, f.js, "routing", msg.Subject(), msg.Data(), err); rerr != nil {
				f.log.Error().Err(rerr).Msg("publish rejection")
			}
		}
		_ = msg.Term()
		return
	}
	r, ok := ev.Payload.(events.StatsReport)
	if !ok {
		_ = msg.Term()
		return
	}
	app := strings.TrimPrefix(msg.Subject(), "instance.stats.")
	changed, band, err := f.Apply(ctx, app, r, time.Now().UTC())
	switch {
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrInstanceNotFound):
		_ = msg.Ack() // figures of an instance routing does not know: nothing to do
	case err != nil:
		f.log.Error().Err(err).Str("app", app).Str("instance", r.InstanceID).Msg("apply stats report")
		_ = msg.NakWithDelay(time.Second)
	default:
		if changed {
			f.log.Info().Str("app", app).Str("instance", r.InstanceID).Int("band", band).
				Float64("cpu_percent", r.CPUPercent).Float64("memory_percent", r.MemoryPercent).Msg("load band changed")
		}
		_ = msg.Ack()
	}
}

// Apply moves the instance's band for report r at now, writing only a
// change that passed the hysteresis and the minimum interval.
func (f *Follower) Apply(ctx context.Context, app string, r events.StatsReport, now time.Time) (changed bool, band int, err error) {
	changed, err = f.store.UpdateInstance(ctx, app, r.InstanceID, func(in *events.Instance) bool {
		band = Band(in.LoadBand, r.CPUPercent, r.MemoryPercent)
		if band == in.LoadBand || (in.LoadBand != 0 && now.Sub(in.LoadBandSince) < f.minInterval) {
			band = in.LoadBand
			return false
		}
		in.LoadBand, in.LoadBandSince = band, now
		in.CPUPercent, in.MemoryPercent = r.CPUPercent, r.MemoryPercent
		return true
	})
	return changed, band, err
}
