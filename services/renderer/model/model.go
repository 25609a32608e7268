// Package model is the renderer's event-fed view of the world: the latest
// resolved state of every app and the health of every instance, each moved
// forward only by newer revisions.
package model

import (
	"sort"
	"sync"

	"github.com/orchestry/orchestry/pkg/events"
)

// Model holds apps and instance health. It is safe for concurrent use.
type Model struct {
	// holdUnprobed keeps an instance out of traffic until health has
	// reported it healthy; otherwise it is served until health says
	// otherwise.
	holdUnprobed bool

	mu     sync.Mutex
	apps   map[string]events.RoutingState
	health map[string]map[string]string // app -> instance id -> state
	appRev events.Gate
	hRev   events.Gate
}

// New returns an empty model. With holdUnprobed, an instance receives
// traffic only once health reports it healthy.
func New(holdUnprobed bool) *Model {
	return &Model{holdUnprobed: holdUnprobed, apps: map[string]events.RoutingState{}, health: map[string]map[string]string{}}
}

// ApplyRouting records the state of one app. It reports whether the model
// changed: an older or repeated revision changes nothing.
func (m *Model) ApplyRouting(s events.RoutingState) bool {
	name := s.App.Metadata.Name
	if !m.appRev.Admit(name, s.Revision) {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if s.Deleted {
		delete(m.apps, name)
		delete(m.health, name)
		return true
	}
	m.apps[name] = s
	return true
}

// ApplyHealth records the health of one instance and reports whether the
// model changed.
func (m *Model) ApplyHealth(h events.HealthState) bool {
	if !m.hRev.Admit(h.App+"/"+h.InstanceID, h.Revision) {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	byID := m.health[h.App]
	if byID == nil {
		byID = map[string]string{}
		m.health[h.App] = byID
	}
	if byID[h.InstanceID] == h.State {
		return false
	}
	byID[h.InstanceID] = h.State
	return true
}

// serves reports whether an instance in state ("" when health has not
// reported on it) should receive traffic.
func (m *Model) serves(state string) bool {
	if state == "" {
		return !m.holdUnprobed
	}
	return state == events.HealthHealthy
}

// Snapshot returns every app, sorted by name, with only the instances that
// should receive traffic.
func (m *Model) Snapshot() []events.RoutingState {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]events.RoutingState, 0, len(m.apps))
	for name, s := range m.apps {
		var live []events.Instance
		for _, in := range s.Instances {
			if m.serves(m.health[name][in.ID]) {
				live = append(live, in)
			}
		}
		s.Instances = live
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].App.Metadata.Name < out[j].App.Metadata.Name })
	return out
}
