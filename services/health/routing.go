package health

import (
	"context"
	"net/netip"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/orchestry/orchestry/pkg/events"
	"github.com/orchestry/orchestry/services/health/probe"
	"github.com/orchestry/orchestry/services/health/schedule"
	"github.com/orchestry/orchestry/services/health/tracker"
)

// spreadAbove is how many new targets one routing change may bring and
// still have them probed at once.
const spreadAbove = 8

// followRouting replays the last routing.changed per app and then follows
// new ones with an ordered consumer (no durable state: a restarted replica
// replays again).
func (s *Service) followRouting(ctx context.Context) (*events.Follower, error) {
	return s.follow(ctx, events.StreamRouting, events.RoutingChangedWildcard, jetstream.DeliverLastPerSubjectPolicy, s.handleRouting)
}

// handleRouting applies one routing.changed: the app's instances become
// the app's targets; removed instances stop being probed and their stored
// states are deleted.
func (s *Service) handleRouting(ctx context.Context, ev events.Event) {
	rs, ok := ev.Payload.(events.RoutingState)
	if !ok {
		return
	}
	app := rs.App.Metadata.Name
	if !s.gate.Admit(app, rs.Revision) {
		return
	}
	// A change replayed at start, or one that brings more than
	// spreadAbove new targets (an app deployed with many instances),
	// has its new targets' first probes spread over a period, so they do
	// not run in step from then on. Otherwise (an instance registered)
	// the new targets are probed at once, so a new instance is served as
	// soon as it is healthy.
	spread := !ev.Envelope.Time.After(s.started)
	if !spread && !rs.Deleted {
		added := 0
		for _, in := range rs.Instances {
			if !in.Draining && !s.sched.Has(events.HealthKey(app, in.ID)) {
				added++
			}
		}
		spread = added > spreadAbove
	}
	want := map[string]bool{}
	var view []member
	var drain, undrain []events.Instance
	if !rs.Deleted {
		for _, in := range rs.Instances {
			view = append(view, newMember(app, in))
			key := events.HealthKey(app, in.ID)
			want[key] = true
			if in.Draining {
				s.sched.Remove(key)
				// Do not hold the draining instance's connections open.
				s.prober.Forget(newTarget(app, rs.App.HealthCheck, in).probe.Addr())
				drain = append(drain, in)
				continue
			}
			if st, ok := s.tracker.Get(key); ok && st.State == events.HealthDraining {
				undrain = append(undrain, in)
			}
			t := newTarget(app, rs.App.HealthCheck, in)
			s.sched.Set(schedule.Spec[target]{Key: key, Period: period(rs.App.HealthCheck), InitialDelay: initialDelay(rs.App.HealthCheck),
				Spread: spread, Value: t})
		}
	}
	s.applyDraining(ctx, app, drain, undrain)
	prefix := app + "."
	gone := map[string]bool{}
	for _, key := range s.sched.Keys() {
		if strings.HasPrefix(key, prefix) && !want[key] {
			s.sched.Remove(key)
			gone[key] = true
		}
	}
	for _, key := range s.tracker.Keys(prefix) {
		if !want[key] {
			gone[key] = true
		}
	}
	s.mu.Lock()
	var forget []string
	for _, m := range s.apps[app] {
		if gone[m.key] && m.addr.IsValid() {
			forget = append(forget, probeAddr(rs.App.HealthCheck, m.addr))
		}
	}
	if len(view) == 0 {
		delete(s.apps, app)
	} else {
		s.apps[app] = view
	}
	for key := range gone {
		delete(s.owned, key)
	}
	s.mu.Unlock()
	for _, addr := range forget {
		s.prober.Forget(addr)
	}
	for key := range gone {
		s.deleteState(ctx, key)
	}
	s.log.Info().Str("app", app).Uint64("revision", rs.Revision).Bool("deleted", rs.Deleted).
		Int("targets", len(want)).Int("removed", len(gone)).Msg("targets updated")
}

// applyDraining moves the instances this replica owns into the draining
// state (drain) or back out of it (undrain), storing and publishing each
// transition. A transition lost to a concurrent writer is tried once more
// on the state that writer stored.
func (s *Service) applyDraining(ctx context.Context, app string, drain, undrain []events.Instance) {
	now := time.Now().UTC()
	for _, in := range drain {
		key := events.HealthKey(app, in.ID)
		for range 2 {
			if !s.owns(key) {
				break
			}
			st, report := s.tracker.Drain(key, app, in.ID, now)
			if !report {
				break
			}
			s.commit(ctx, key, st)
		}
	}
	for _, in := range undrain {
		key := events.HealthKey(app, in.ID)
		if !s.owns(key) {
			continue
		}
		if st, report := s.tracker.Undrain(key, now); report {
			s.commit(ctx, key, st)
		}
	}
}

// newTarget is how to probe instance in of app.
func newTarget(app string, hc *events.HealthCheck, in events.Instance) target {
	var check events.HealthCheck
	if hc != nil {
		check = *hc
	}
	return target{
		app:     app,
		id:      in.ID,
		probe:   probe.Target{IP: in.IP, Port: in.Port, Check: check},
		th:      tracker.Thresholds{Failure: check.FailureThreshold, Success: check.SuccessThreshold},
		timeout: timeout(hc),
	}
}

// probeAddr is the address the check hc of the instance at a connects to
// (as probe.Target.Addr).
func probeAddr(hc *events.HealthCheck, a netip.AddrPort) string {
	if hc != nil && hc.Port > 0 && hc.Port < 1<<16 {
		a = netip.AddrPortFrom(a.Addr(), uint16(hc.Port))
	}
	return a.String()
}

func seconds(v float64) time.Duration { return time.Duration(v * float64(time.Second)) }

// period is the check's period: periodSeconds, else DefaultPeriod, and at
// least MinPeriod.
func period(hc *events.HealthCheck) time.Duration {
	p := DefaultPeriod
	if hc != nil && hc.PeriodSeconds > 0 {
		p = seconds(hc.PeriodSeconds)
	}
	return max(p, MinPeriod)
}

// timeout is the check's timeout: timeoutSeconds, else the smaller of
// DefaultMaxTimeout and the period.
func timeout(hc *events.HealthCheck) time.Duration {
	if hc != nil && hc.TimeoutSeconds > 0 {
		return seconds(hc.TimeoutSeconds)
	}
	return min(DefaultMaxTimeout, period(hc))
}

func initialDelay(hc *events.HealthCheck) time.Duration {
	if hc == nil {
		return 0
	}
	return seconds(hc.InitialDelaySeconds)
}
