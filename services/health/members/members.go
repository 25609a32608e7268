// Package members tracks the live replicas of a service that share work,
// through heartbeats in the events.BucketMembers KV bucket, and decides
// which replica owns each piece of work by rendezvous (highest random
// weight) hashing over the live members.
package members

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// Heartbeat is the value of a member key.
type Heartbeat struct {
	Replica string    `json:"replica"`
	At      time.Time `json:"at"`
}

// Group is this replica's view of the live members of one service.
type Group struct {
	kv        jetstream.KeyValue
	service   string
	self      string
	heartbeat time.Duration
	lease     time.Duration
	log       zerolog.Logger

	mu sync.Mutex
	// seen is when each other member was last heard of (local clock for
	// live updates, the heartbeat's own time for the initial replay).
	seen map[string]time.Time
}

// New returns the group of service as seen by replica self, which puts a
// heartbeat every heartbeat and counts a member live for lease after its
// last one.
func New(kv jetstream.KeyValue, service, self string, heartbeat, lease time.Duration, log zerolog.Logger) *Group {
	return &Group{
		kv: kv, service: service, self: self, heartbeat: heartbeat, lease: lease,
		log: log, seen: map[string]time.Time{},
	}
}

// Key is the KV key of replica's heartbeat.
func (g *Group) Key(replica string) string { return g.service + "." + replica }

// Start puts the first heartbeat and reads the current members; then it
// keeps heartbeating and watching in the background until ctx ends. done
// is closed when the background work has stopped.
func (g *Group) Start(ctx context.Context) (done <-chan struct{}, err error) {
	if err := g.beat(ctx); err != nil {
		return nil, err
	}
	w, err := g.kv.Watch(ctx, g.service+".*")
	if err != nil {
		return nil, fmt.Errorf("members: watch: %w", err)
	}
	initial := true
	for initial {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return nil, errors.New("members: watch closed")
			}
			if e == nil {
				initial = false
				continue
			}
			g.apply(e, true)
		case <-ctx.Done():
			_ = w.Stop()
			return nil, ctx.Err()
		}
	}
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		defer func() { _ = w.Stop() }()
		tick := time.NewTicker(g.heartbeat)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				bctx, cancel := context.WithTimeout(ctx, g.lease)
				if err := g.beat(bctx); err != nil && ctx.Err() == nil {
					g.log.Warn().Err(err).Msg("heartbeat")
				}
				cancel()
			case e, ok := <-w.Updates():
				if !ok {
					return
				}
				if e != nil {
					g.apply(e, false)
				}
			}
		}
	}()
	return ch, nil
}

func (g *Group) beat(ctx context.Context) error {
	b, err := json.Marshal(Heartbeat{Replica: g.self, At: time.Now().UTC()})
	if err != nil {
		return fmt.Errorf("members: encode heartbeat: %w", err)
	}
	if _, err := g.kv.Put(ctx, g.Key(g.self), b); err != nil {
		return fmt.Errorf("members: heartbeat: %w", err)
	}
	return nil
}

func (g *Group) apply(e jetstream.KeyValueEntry, replay bool) {
	replica := strings.TrimPrefix(e.Key(), g.service+".")
	if replica == g.self {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if e.Operation() != jetstream.KeyValuePut {
		if _, ok := g.seen[replica]; ok {
			g.log.Info().Str("member", replica).Msg("member left")
		}
		delete(g.seen, replica)
		return
	}
	now := time.Now()
	at := now
	if replay {
		var hb Heartbeat
		if err := json.Unmarshal(e.Value(), &hb); err != nil {
			g.log.Warn().Err(err).Str("key", e.Key()).Msg("bad heartbeat")
			return
		}
		if hb.At.Before(now) {
			at = hb.At
		}
	}
	if last, ok := g.seen[replica]; !ok || now.Sub(last) > g.lease {
		g.log.Info().Str("member", replica).Msg("member live")
	}
	g.seen[replica] = at
}

// Leave deletes this replica's heartbeat so the others take over its work
// at once.
func (g *Group) Leave(ctx context.Context) error {
	if err := g.kv.Delete(ctx, g.Key(g.self)); err != nil {
		return fmt.Errorf("members: leave: %w", err)
	}
	return nil
}

// Live returns the live members, this replica included, sorted.
func (g *Group) Live() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := time.Now()
	live := []string{g.self}
	for r, at := range g.seen {
		if now.Sub(at) < g.lease {
			live = append(live, r)
		}
	}
	slices.Sort(live)
	return live
}

// Owner returns the live member that owns key.
func (g *Group) Owner(key string) string { return Owner(g.Live(), key) }

// Owns reports whether this replica owns key.
func (g *Group) Owns(key string) bool { return g.Owner(key) == g.self }

// Owner returns the member of members with the highest rendezvous weight
// for key ("" when members is empty). Every replica with the same view of
// the members picks the same owner, and removing a member moves only the
// keys it owned.
func Owner(members []string, key string) string {
	var best string
	var bestW uint64
	for _, m := range members {
		w := weight(m, key)
		if best == "" || w > bestW || (w == bestW && m < best) {
			best, bestW = m, w
		}
	}
	return best
}

// weight hashes member and key together (FNV-1a, then a splitmix64
// finaliser for an even spread).
func weight(member, key string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(member))
	h.Write([]byte{0})
	h.Write([]byte(key))
	x := h.Sum64()
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
