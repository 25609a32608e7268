// Package model is the renderer's event-fed view of the world: the latest
// resolved state of every app and the health of every instance, each moved
// forward only by newer revisions. Its Snapshot decides which instances get
// traffic and with which weight: healthy ones, recovered ones ramped up
// over the slow-start window, and ejected ones kept as backups when too few
// are healthy (the panic floor).
package model

import (
	"sort"
	"sync"
	"time"

	"github.com/orchestry/orchestry/pkg/events"
)

// Policy is how health turns into traffic.
type Policy struct {
	// HoldUnprobed keeps an instance out of traffic until health has
	// reported it healthy; otherwise it is served until health says
	// otherwise.
	HoldUnprobed bool
	// SlowStart is the window over which an instance that recovered (was
	// healthy, then unhealthy or ejected, then healthy again) has its
	// weight stepped up, in
	// SlowStartSteps equal steps; 0 serves it at full weight at once.
	SlowStart time.Duration
	// PanicPercent is the panic floor: when fewer than this share of an
	// app's instances is healthy, its ejected instances are served too, as
	// backups, rather than concentrate all traffic on the few; 0 never
	// panics. Unhealthy instances (failing active probes) are never served.
	PanicPercent int
}

// SlowStartSteps is how many weight steps a slow start takes: in step k
// (1-based) the weight is k/(SlowStartSteps+1) of the full one, and full
// weight comes when the window ends. Each step is one render.
const SlowStartSteps = 4

// maxWeight is the largest weight pkg/events accepts for an instance.
const maxWeight = 1000

// Model holds apps and instance health. It is safe for concurrent use.
type Model struct {
	policy Policy

	mu     sync.Mutex
	apps   map[string]events.RoutingState
	health map[string]map[string]health // app -> instance id -> health
	appRev events.Gate
	hRev   events.Gate
	// unserved are, per app, the routing changes not yet reported served,
	// oldest first (at most maxUnserved).
	unserved map[string][]change
}

// change is one routing.changed the node has not yet reported served.
type change struct {
	rev uint64
	at  time.Time // its publish time
}

// maxUnserved bounds the changes remembered per app between two live
// configs; beyond it the newest replaces the last one kept, so the oldest
// (which sets the convergence time) is never lost.
const maxUnserved = 64

// health is what the model keeps of one instance's health.
type health struct {
	state string
	// recovered is when the instance last turned healthy again after it
	// had been healthy, then unhealthy or ejected; zero when it never did
	// or is not healthy. A new instance's first healthy report (after the
	// initial unhealthy state) is not a recovery.
	recovered time.Time
	// wasHealthy: the instance has been reported healthy before.
	wasHealthy bool
}

// New returns an empty model that serves by policy.
func New(policy Policy) *Model {
	return &Model{policy: policy, apps: map[string]events.RoutingState{}, health: map[string]map[string]health{},
		unserved: map[string][]change{}}
}

// ApplyRouting records the state of one app. It reports whether the model
// changed: an older or repeated revision changes nothing.
func (m *Model) ApplyRouting(s events.RoutingState) bool {
	return m.ApplyRoutingChange(s, time.Time{})
}

// ApplyRoutingChange is ApplyRouting for a change published at published
// (zero for a replayed one, which is not timed). The change is remembered
// until MarkServed reports it served: a replayed one too, since a
// restarted node that serves an app must say so, or a rollout would wait
// on it forever.
func (m *Model) ApplyRoutingChange(s events.RoutingState, published time.Time) bool {
	name := s.App.Metadata.Name
	if !m.appRev.Admit(name, s.Revision) {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	u := m.unserved[name]
	c := change{rev: s.Revision, at: published}
	if len(u) < maxUnserved {
		u = append(u, c)
	} else {
		u[len(u)-1] = c
	}
	m.unserved[name] = u
	if s.Deleted {
		delete(m.apps, name)
		delete(m.health, name)
		return true
	}
	m.apps[name] = s
	return true
}

// ApplyHealth records the health of one instance and reports whether the
// model changed. A recovery is dated by the state's Since (the health
// service's clock), bounded by now, so a replayed old recovery does not
// ramp again.
func (m *Model) ApplyHealth(h events.HealthState, now time.Time) bool {
	if !m.hRev.Admit(h.App+"/"+h.InstanceID, h.Revision) {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	byID := m.health[h.App]
	if byID == nil {
		byID = map[string]health{}
		m.health[h.App] = byID
	}
	old, known := byID[h.InstanceID]
	if known && old.state == h.State {
		return false
	}
	next := health{state: h.State, wasHealthy: old.wasHealthy || h.State == events.HealthHealthy}
	if h.State == events.HealthHealthy && old.wasHealthy && (old.state == events.HealthUnhealthy || old.state == events.HealthEjected) {
		next.recovered = h.Since
		if next.recovered.IsZero() || next.recovered.After(now) {
			next.recovered = now
		}
	}
	byID[h.InstanceID] = next
	return true
}

// Unserved returns, per app with changes not yet reported served, the
// newest such revision. Take it before the Snapshot a config is rendered
// from: every change it lists is in that snapshot.
func (m *Model) Unserved() map[string]uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]uint64, len(m.unserved))
	for app, u := range m.unserved {
		out[app] = u[len(u)-1].rev
	}
	return out
}

// MarkServed forgets the changes of each app in upTo (from Unserved) up to
// its revision, except the apps in skip (left out of the config), and
// returns, sorted by app, one ServedChange per app: the revision served
// and the publish time of the oldest change it forgot.
func (m *Model) MarkServed(upTo map[string]uint64, skip map[string]bool) []events.ServedChange {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []events.ServedChange
	for app, rev := range upTo {
		u := m.unserved[app]
		if skip[app] || len(u) == 0 || u[0].rev > rev {
			continue
		}
		i := 0
		for i < len(u) && u[i].rev <= rev {
			i++
		}
		var at time.Time // the oldest timed change's; zero when all were replayed
		for _, c := range u[:i] {
			if !c.at.IsZero() {
				at = c.at
				break
			}
		}
		out = append(out, events.ServedChange{App: app, Revision: u[i-1].rev, ChangedAt: at})
		if i == len(u) {
			delete(m.unserved, app)
		} else {
			m.unserved[app] = u[i:]
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].App < out[j].App })
	return out
}

// serves reports whether an instance in state ("" when health has not
// reported on it) is a primary.
func (m *Model) serves(state string) bool {
	if state == "" {
		return !m.policy.HoldUnprobed
	}
	return state == events.HealthHealthy
}

// Snapshot returns every app, sorted by name, with only the instances that
// should receive traffic at now and their weights, and the next time a
// snapshot would differ without any new event (the next slow-start step);
// zero when none is pending.
func (m *Model) Snapshot(now time.Time) ([]events.RoutingState, time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]events.RoutingState, 0, len(m.apps))
	var next time.Time
	for name, s := range m.apps {
		var at time.Time
		s.Instances, at = m.serving(s.Instances, m.health[name], now)
		if !at.IsZero() && (next.IsZero() || at.Before(next)) {
			next = at
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].App.Metadata.Name < out[j].App.Metadata.Name })
	return out, next
}

// serving picks and weighs the instances of one app.
func (m *Model) serving(all []events.Instance, byID map[string]health, now time.Time) ([]events.Instance, time.Time) {
	var live, ejected []events.Instance
	var ramp []int // indexes into live
	var steps []int
	var next time.Time
	for _, in := range all {
		h := byID[in.ID]
		switch {
		case in.Draining:
			// Taken out by its owner, whatever its health.
		case m.serves(h.state):
			if k, at, ok := m.step(h.recovered, now); ok {
				ramp = append(ramp, len(live))
				steps = append(steps, k)
				if next.IsZero() || at.Before(next) {
					next = at
				}
			}
			live = append(live, in)
		case h.state == events.HealthEjected:
			ejected = append(ejected, in)
		}
	}
	// Ramp only against instances at full weight: when all are ramping
	// there is no one to shift traffic from.
	if len(ramp) > 0 && len(ramp) < len(live) {
		scale := SlowStartSteps + 1
		for _, in := range live {
			scale = min(scale, maxWeight/weight(in))
		}
		scale = max(scale, 1)
		for i := range live {
			live[i].Weight = weight(live[i]) * scale
		}
		for j, i := range ramp {
			live[i].Weight = max(1, live[i].Weight*steps[j]/(SlowStartSteps+1))
		}
	} else {
		next = time.Time{}
	}
	if p := m.policy.PanicPercent; p > 0 && len(ejected) > 0 && len(live)*100 < p*len(all) {
		for _, in := range ejected {
			in.Backup = true
			live = append(live, in)
		}
	}
	return live, next
}

// step reports the slow-start step (1 to SlowStartSteps) of an instance
// that recovered at since, and when the next step begins; ok is false when
// it is at full weight.
func (m *Model) step(since, now time.Time) (k int, at time.Time, ok bool) {
	w := m.policy.SlowStart
	if w <= 0 || since.IsZero() {
		return 0, time.Time{}, false
	}
	elapsed := now.Sub(since)
	if elapsed < 0 {
		elapsed = 0
	}
	if elapsed >= w {
		return 0, time.Time{}, false
	}
	k = 1 + int(elapsed*SlowStartSteps/w)
	return k, since.Add(w * time.Duration(k) / SlowStartSteps), true
}

// weight is an instance's static weight; 0 means 1.
func weight(in events.Instance) int {
	if in.Weight <= 0 {
		return 1
	}
	return in.Weight
}
