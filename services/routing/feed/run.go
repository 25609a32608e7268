package feed

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/orchestry/orchestry/pkg/events"
)

// Sources are the streams and subjects the feed follows.
var Sources = []struct {
	Stream   string
	Subjects []string
}{
	{events.StreamRouting, []string{events.RoutingChangedWildcard}},
	{events.StreamInstances, []string{events.InstanceRegisteredWildcard, events.InstanceDeregisteredWildcard}},
	{events.StreamHealth, []string{events.InstanceHealthWildcard}},
	{events.StreamConfig, []string{events.ConfigRenderedWildcard}},
	{events.StreamCerts, []string{events.CertIssuedWildcard, events.CertFailedWildcard}},
	{events.StreamMetrics, []string{events.MetricsUpstreamWildcard}},
	{events.StreamRejected, []string{events.RejectedWildcard}},
}

// replayWait bounds how long Run holds the replayed records back to sort
// them by time before it publishes them anyway.
const replayWait = 15 * time.Second

// Run follows every source with events.FollowMessages (no durable state;
// each recreates its consumer after failures) until ctx ends: the events of the
// last Options.Replay first, then new ones. The replayed records enter the
// ring sorted by event time once every source has caught up, so the ring
// reads oldest first across streams; later ones enter as they arrive.
// Events that do not decode are logged and left out (the feed is a view:
// it answers nothing on rejected.>).
func (f *Feed) Run(ctx context.Context, js jetstream.JetStream, log zerolog.Logger) error {
	log = log.With().Str("component", "feed").Logger()
	opts := events.FollowOptions{Deliver: jetstream.DeliverNewPolicy,
		Trouble: func(err error) { log.Warn().Err(err).Msg("event consumer") }}
	if f.opts.Replay > 0 {
		start := time.Now().Add(-f.opts.Replay)
		opts.StartTime = &start
	}
	h := &holder{feed: f, pending: []EventRecord{}}
	var (
		wg        sync.WaitGroup
		followers []*events.Follower
	)
	defer func() {
		for _, fl := range followers {
			fl.Stop()
		}
	}()
	for _, src := range Sources {
		o := opts
		o.Stream, o.Subjects = src.Stream, src.Subjects
		fl, err := events.FollowMessages(ctx, js, o, func(msg jetstream.Msg) {
			ev, err := events.Decode(msg.Subject(), msg.Data())
			if err != nil {
				log.Debug().Err(err).Str("subject", msg.Subject()).Msg("event left out of the feed")
				return
			}
			h.add(Record(msg.Subject(), ev))
		})
		if err != nil {
			return fmt.Errorf("feed: %w", err)
		}
		followers = append(followers, fl)
		wg.Go(func() {
			select {
			case <-fl.CaughtUp():
			case <-ctx.Done():
			}
		})
	}
	replayed := make(chan struct{})
	go func() { wg.Wait(); close(replayed) }()
	select {
	case <-replayed:
	case <-time.After(replayWait):
		log.Warn().Dur("wait", replayWait).Msg("replay not caught up; publishing what arrived")
	case <-ctx.Done():
		return nil
	}
	n := h.release()
	log.Info().Int("replayed", n).Dur("window", f.opts.Replay).Msg("event feed live")
	<-ctx.Done()
	return nil
}

// holder keeps records back while the streams replay, then lets them
// through to the feed.
type holder struct {
	feed    *Feed
	mu      sync.Mutex
	pending []EventRecord // nil once released
}

func (h *holder) add(r EventRecord) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.pending != nil {
		h.pending = append(h.pending, r)
		return
	}
	h.feed.Add(r)
}

// release adds the held records sorted by time and lets later ones
// through; it returns how many it held.
func (h *holder) release() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	held := h.pending
	h.pending = nil
	slices.SortStableFunc(held, func(a, b EventRecord) int { return cmp.Compare(a.Time.UnixNano(), b.Time.UnixNano()) })
	for _, r := range held {
		h.feed.Add(r)
	}
	return len(held)
}
