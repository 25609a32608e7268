// Package status keeps the last render report of every NGINX node, and the
// highest revision each node served per app, read from the CONFIG stream
// (config.rendered.<node>), for GET /v1/status and the rollout of an app.
package status

import (
	"context"
	"fmt"
	"maps"
	"sort"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/orchestry/orchestry/pkg/events"
)

// Node is the last report of one NGINX node and when routing received it,
// with the highest routing revision the node has served per app.
type Node struct {
	events.RenderReport
	ReceivedAt time.Time `json:"received_at"`
	// ServedRevisions is, per app (a deleted one too), the highest
	// routing.changed revision any report of this node listed as served:
	// the node serves that app's state up to it.
	ServedRevisions map[string]uint64 `json:"served_revisions"`
}

// Tracker holds the newest report per node and what each node served. It
// is safe for concurrent use; the zero value is ready.
type Tracker struct {
	gate   events.Gate
	mu     sync.RWMutex
	nodes  map[string]Node
	served map[string]map[string]uint64 // node -> app -> revision
}

// Nodes returns the newest report of every node, sorted by node name.
func (t *Tracker) Nodes() []Node {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]Node, 0, len(t.nodes))
	for name, n := range t.nodes {
		n.ServedRevisions = maps.Clone(t.served[name])
		if n.ServedRevisions == nil {
			n.ServedRevisions = map[string]uint64{}
		}
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Node < out[j].Node })
	return out
}

// Observe records r unless a report of the same node with an equal or
// higher revision was already recorded. It reports whether r was kept.
// The apps r lists as served count in any case (a served revision is
// never taken back, so an old report only confirms what is known).
func (t *Tracker) Observe(r events.RenderReport, at time.Time) bool {
	kept := t.gate.Admit(r.Node, r.Revision)
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(r.Served) > 0 {
		if t.served == nil {
			t.served = map[string]map[string]uint64{}
		}
		apps := t.served[r.Node]
		if apps == nil {
			apps = map[string]uint64{}
			t.served[r.Node] = apps
		}
		for _, c := range r.Served {
			apps[c.App] = max(apps[c.App], c.Revision)
		}
	}
	if !kept {
		return false
	}
	if t.nodes == nil {
		t.nodes = map[string]Node{}
	}
	t.nodes[r.Node] = Node{RenderReport: r, ReceivedAt: at.UTC()}
	return true
}

// Run follows the CONFIG stream from the oldest report it holds (the last
// 64 per node) until ctx ends, with an ordered consumer (which recreates
// itself after failures): every report kept counts towards the served
// revisions, so they survive a restart of routing.
func (t *Tracker) Run(ctx context.Context, js jetstream.JetStream, log zerolog.Logger) error {
	f, err := events.Follow(ctx, js, events.FollowOptions{
		Stream: events.StreamConfig, Subjects: []string{events.ConfigRenderedWildcard}, Deliver: jetstream.DeliverAllPolicy,
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
