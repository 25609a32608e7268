// Package status keeps the last render report of every NGINX node, read from
// the CONFIG stream (config.rendered.<node>), for GET /v1/status.
package status

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/orchestry/orchestry/pkg/events"
)

// Node is the last report of one NGINX node and when routing received it.
type Node struct {
	events.RenderReport
	ReceivedAt time.Time `json:"received_at"`
}

// Tracker holds the newest report per node. It is safe for concurrent use;
// the zero value is ready.
type Tracker struct {
	gate  events.Gate
	mu    sync.RWMutex
	nodes map[string]Node
}

// Nodes returns the newest report of every node, sorted by node name.
func (t *Tracker) Nodes() []Node {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]Node, 0, len(t.nodes))
	for _, n := range t.nodes {
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Node < out[j].Node })
	return out
}

// Observe records r unless a report of the same node with an equal or
// higher revision was already recorded. It reports whether r was kept.
func (t *Tracker) Observe(r events.RenderReport, at time.Time) bool {
	if !t.gate.Admit(r.Node, r.Revision) {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.nodes == nil {
		t.nodes = map[string]Node{}
	}
	t.nodes[r.Node] = Node{RenderReport: r, ReceivedAt: at.UTC()}
	return true
}

// Run follows the CONFIG stream from the last report per node until ctx
// ends, with an ordered consumer (which recreates itself after failures).
func (t *Tracker) Run(ctx context.Context, js jetstream.JetStream, log zerolog.Logger) error {
	f, err := events.Follow(ctx, js, events.FollowOptions{
		Stream: events.StreamConfig, Subjects: []string{events.ConfigRenderedWildcard}, Deliver: jetstream.DeliverLastPerSubjectPolicy,
		Rejected: func(subject string, err error) {
			log.Warn().Err(err).Str("subject", subject).Msg("render report ignored")
		},
		Trouble: func(err error) { log.Warn().Err(err).Msg("event consumer") },
	}, func(ev events.Event) {
		r, ok := ev.Payload.(events.RenderReport)
		if !ok {
			log.Warn().Str("type", ev.Envelope.Type).Msg("unexpected event on config stream")
			return
		}
		if t.Observe(r, time.Now()) {
			log.Debug().Str("node", r.Node).Uint64("revision", r.Revision).Str("outcome", r.Outcome).Msg("render report")
		}
	})
	if err != nil {
		return fmt.Errorf("status: %w", err)
	}
	<-ctx.Done()
	f.Stop()
	return nil
}
