package health

import (
	"context"
	"net/netip"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/orchestry/orchestry/pkg/events"
	"github.com/orchestry/orchestry/services/health/outlier"
)

// member is one instance of an app in the routing view: its health key
// and the address NGINX sends it traffic at.
type member struct {
	key  string
	addr netip.AddrPort
}

func newMember(app string, in events.Instance) member {
	m := member{key: events.HealthKey(app, in.ID)}
	if ip, err := netip.ParseAddr(in.IP); err == nil && in.Port > 0 && in.Port < 1<<16 {
		m.addr = netip.AddrPortFrom(ip, uint16(in.Port))
	}
	return m
}

// followMetrics consumes metrics.upstream from now on with an ordered
// consumer: every replica sees every app's figures (so all decide alike)
// and acts only on the targets it owns. Figures published while no replica
// ran are past and ignored.
func (s *Service) followMetrics(ctx context.Context) (*events.Follower, error) {
	return s.follow(ctx, events.StreamMetrics, events.MetricsUpstreamWildcard, jetstream.DeliverNewPolicy, s.handleMetrics)
}

// handleMetrics applies one window of an app's traffic figures: the
// outliers among its instances are ejected, within the app's maximum
// share out of service (outlier.Rules.Plan decides, the same on every
// replica that sees the same states); this replica ejects those it owns,
// through the same compare-and-set commit as every other transition.
func (s *Service) handleMetrics(ctx context.Context, ev events.Event) {
	m, ok := ev.Payload.(events.UpstreamMetrics)
	if !ok || len(m.Instances) == 0 {
		return
	}
	s.mu.Lock()
	view := s.apps[m.App]
	s.mu.Unlock()
	if len(view) == 0 {
		return
	}
	instances := make([]outlier.Instance, 0, len(view))
	for _, mb := range view {
		st, ok := s.tracker.Get(mb.key)
		instances = append(instances, outlier.Instance{Key: mb.key, Addr: mb.addr, Healthy: ok && st.State == events.HealthHealthy})
	}
	eject, held := s.rules.Plan(instances, m.Instances, s.cfg.OutlierMaxPercent)
	if len(held) > 0 {
		s.log.Warn().Str("app", m.App).Int("held", len(held)).Int("max_percent", s.cfg.OutlierMaxPercent).
			Msg("outliers kept in service: the app is at its maximum share out of service")
	}
	now := time.Now().UTC()
	for _, e := range eject {
		if !s.owns(e.Key) || !s.sched.Has(e.Key) {
			continue
		}
		st, ok := s.tracker.Eject(e.Key, e.Why, now)
		if !ok {
			continue
		}
		s.commit(ctx, e.Key, st)
	}
}
