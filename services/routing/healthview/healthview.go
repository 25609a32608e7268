// Package healthview mirrors the health service's current state of every
// instance (KV bucket events.BucketHealth) in memory, so the API can show
// each instance's health without a KV read per request.
package healthview

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/orchestry/orchestry/pkg/events"
)

// View is the in-memory mirror. The zero value is empty and ready.
type View struct {
	mu     sync.RWMutex
	states map[string]events.HealthState // by events.HealthKey
}

// Lookup returns the health of one instance, if the health service has
// reported on it.
func (v *View) Lookup(app, id string) (events.HealthState, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	h, ok := v.states[events.HealthKey(app, id)]
	return h, ok
}

// Run watches the bucket until ctx ends. Values that do not hold a valid
// HealthState are logged and skipped.
func (v *View) Run(ctx context.Context, js jetstream.JetStream, log zerolog.Logger) error {
	kv, err := js.KeyValue(ctx, events.BucketHealth)
	if err != nil {
		return fmt.Errorf("health view: %w", err)
	}
	w, err := kv.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("health view: %w", err)
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-w.Updates():
			if !ok {
				return nil
			}
			if e == nil { // initial values replayed
				continue
			}
			v.apply(e, log)
		}
	}
}

func (v *View) apply(e jetstream.KeyValueEntry, log zerolog.Logger) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.states == nil {
		v.states = map[string]events.HealthState{}
	}
	if e.Operation() != jetstream.KeyValuePut {
		delete(v.states, e.Key())
		return
	}
	var h events.HealthState
	if err := json.Unmarshal(e.Value(), &h); err != nil {
		log.Warn().Err(err).Str("key", e.Key()).Msg("health entry is not a HealthState")
		return
	}
	if err := h.Validate(); err != nil {
		log.Warn().Err(err).Str("key", e.Key()).Msg("health entry is invalid")
		return
	}
	// The stored value leaves the revision to the KV entry, as the
	// health service does when it publishes the state.
	h.Revision = e.Revision()
	v.states[e.Key()] = h
}
