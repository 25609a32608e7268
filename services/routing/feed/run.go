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

// Run follows every source with an ordered consumer (no durable state;
// each recreates itself after failures) until ctx ends: the events of the
// last Options.Replay first, then new ones. The replayed records enter the
// ring sorted by event time once every source has caught up, so the ring
// reads oldest first across streams; later ones enter as they arrive.
// Events that do not decode are logged and left out (the feed is a view:
// it answers nothing on rejected.>).
func (f *Feed) Run(ctx context.Context, js jetstream.JetStream, log zerolog.Logger) error {
	log = log.With().Str("component", "feed").Logger()
	cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverNewPolicy}
	if f.opts.Replay > 0 {
		start := time.Now().Add(-f.opts.Replay)
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &start
	}
	h := &holder{feed: f, pending: []EventRecord{}}
	var (
		wg       sync.WaitGroup
		contexts []jetstream.ConsumeContext
	)
	defer func() {
		for _, cc := range contexts {
			cc.Stop()
		}
	}()
	for _, src := range Sources {
		c := cfg
		c.FilterSubjects = src.Subjects
		cons, err := js.OrderedConsumer(ctx, src.Stream, c)
		if err != nil {
			return fmt.Errorf("feed: consumer on %s: %w", src.Stream, err)
		}
		info, err := cons.Info(ctx)
		if err != nil {
			return fmt.Errorf("feed: consumer on %s: %w", src.Stream, err)
		}
		caughtUp := make(chan struct{})
		var once sync.Once
		done := func() { once.Do(func() { close(caughtUp) }) }
		if info.NumPending == 0 {
			done()
		}
		cc, err := cons.Consume(func(msg jetstream.Msg) {
			ev, err := events.Decode(msg.Subject(), msg.Data())
			if err != nil {
				log.Debug().Err(err).Str("subject", msg.Subject()).Msg("event left out of the feed")
			} else {
				h.add(Record(msg.Subject(), ev))
			}
			if md, err := msg.Metadata(); err == nil && md.NumPending == 0 {
				done()
			}
		}, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			log.Warn().Err(err).Str("stream", src.Stream).Msg("event consumer")
		}))
		if err != nil {
			return fmt.Errorf("feed: consume %s: %w", src.Stream, err)
		}
		contexts = append(contexts, cc)
		wg.Go(func() {
			select {
			case <-caughtUp:
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
