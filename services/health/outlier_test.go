package health

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/orchestry/orchestry/pkg/events"
	"github.com/orchestry/orchestry/pkg/events/eventstest"
	"github.com/orchestry/orchestry/services/health/outlier"
)

// outlierConfig turns passive detection on with the defaults' rules and a
// base ejection time of base.
func outlierConfig(base time.Duration) func(*Config) {
	return func(c *Config) {
		c.OutlierConsecutiveGateway = 5
		c.OutlierConsecutive5xx = 5
		c.OutlierFailurePercent = 50
		c.OutlierMinRequests = 10
		c.OutlierBaseEjection = base
		c.OutlierMaxEjection = 10 * base
		c.OutlierMaxPercent = 50
	}
}

// app is a routing state of n instances, one real backend each.
func appWith(t *testing.T, name string, n int) (events.RoutingState, []*backend) {
	t.Helper()
	rs := events.RoutingState{App: events.App{Metadata: events.Metadata{Name: name}, HealthCheck: fastCheck()}, Revision: 1}
	var bs []*backend
	for i := range n {
		b := newBackend(t)
		bs = append(bs, b)
		rs.Instances = append(rs.Instances, events.Instance{ID: fmt.Sprintf("%s-%d", name, i), IP: "127.0.0.1", Port: b.port(t)})
	}
	return rs, bs
}

func addr(in events.Instance) string { return net.JoinHostPort(in.IP, strconv.Itoa(in.Port)) }

// publishMetrics acts as the metrics service: one window of app's traffic.
func publishMetrics(t *testing.T, nc *nats.Conn, app string, traffic ...events.InstanceTraffic) {
	t.Helper()
	js, err := jetstreamNew(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m := events.UpstreamMetrics{App: app, WindowStart: time.Now().UTC().Add(-10 * time.Second), WindowSeconds: 10, Instances: traffic}
	if _, err := events.Publish(ctx, js, "test", events.MetricsUpstream(app), m); err != nil {
		t.Fatal(err)
	}
}

func failing(in events.Instance) events.InstanceTraffic {
	return events.InstanceTraffic{Address: addr(in), Requests: 20, Status2xx: 4, Status5xx: 16, Consecutive5xx: 3}
}

func gatewayErrors(in events.Instance) events.InstanceTraffic {
	return events.InstanceTraffic{Address: addr(in), Requests: 10, Status2xx: 4, Status5xx: 6, GatewayErrors: 6,
		Consecutive5xx: 6, ConsecutiveGatewayErrors: 6}
}

func fine(in events.Instance) events.InstanceTraffic {
	return events.InstanceTraffic{Address: addr(in), Requests: 20, Status2xx: 20}
}

// waitConsumers waits until n replicas follow metrics.upstream.
func waitConsumers(t *testing.T, js jetstream.JetStream, n int) {
	t.Helper()
	waitFor(t, 10*time.Second, fmt.Sprintf("%d metrics consumers", n), func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		st, err := js.Stream(ctx, events.StreamMetrics)
		if err != nil {
			return false
		}
		info, err := st.Info(ctx)
		return err == nil && info.State.Consumers == n
	})
}

func waitHealthy(t *testing.T, c *collector, rs events.RoutingState) {
	t.Helper()
	for _, in := range rs.Instances {
		waitFor(t, 10*time.Second, in.ID+" healthy", func() bool {
			st, ok := c.last(in.ID)
			return ok && st.State == events.HealthHealthy
		})
	}
}

// ejections returns the ejected events of id.
func (c *collector) ejections(id string) []events.HealthState {
	var out []events.HealthState
	for _, st := range c.of(id) {
		if st.State == events.HealthEjected {
			out = append(out, st)
		}
	}
	return out
}

func TestOutlierEjectAndReturn(t *testing.T) {
	const base = time.Second
	srv := eventstest.Start(t, "")
	nc, js := srv.Connect(t)
	seen := collect(t, nc)
	startWith(t, nc, "one", false, outlierConfig(base))
	rs, _ := appWith(t, "web", 4)
	publishRouting(t, nc, rs)
	waitHealthy(t, seen, rs)
	waitConsumers(t, js, 1)
	bad := rs.Instances[1]

	// One instance answers 80% 5xx: it alone is ejected, with the reason.
	cycle := func(round int, want time.Duration) {
		t.Helper()
		publishMetrics(t, nc, "web", fine(rs.Instances[0]), failing(bad), fine(rs.Instances[2]), fine(rs.Instances[3]))
		waitFor(t, 5*time.Second, fmt.Sprintf("ejection %d", round), func() bool { return len(seen.ejections(bad.ID)) == round })
		ej := seen.ejections(bad.ID)[round-1]
		wantErr := fmt.Sprintf("outlier: 5xx 80%% of 20 requests; ejected for %s", want)
		if ej.LastError != wantErr || ej.Ejections != round || ej.EjectedUntil == nil || !ej.EjectedUntil.Equal(ej.Since.Add(want)) {
			t.Fatalf("ejection %d: %+v, want last_error %q, ejections %d, until since+%s", round, ej, wantErr, round, want)
		}
		// Back through a passing probe once the time has passed.
		waitFor(t, want+5*time.Second, fmt.Sprintf("return %d", round), func() bool {
			st, _ := seen.last(bad.ID)
			return st.State == events.HealthHealthy && st.Since.After(ej.Since)
		})
		back, _ := seen.last(bad.ID)
		took := back.Since.Sub(ej.Since)
		t.Logf("ejection %d lasted %s (ejection time %s)", round, took, want)
		// The probe period is 200ms (±10%): the first probe after the time.
		if took < want || took > want+500*time.Millisecond {
			t.Fatalf("ejection %d lasted %s, want %s plus at most a probe period", round, took, want)
		}
		if back.LastError != "" || back.EjectedUntil != nil || back.Revision <= ej.Revision {
			t.Fatalf("return: %+v after %+v", back, ej)
		}
	}
	cycle(1, base)
	// Ejected again at once: twice as long.
	cycle(2, 2*base)

	for _, in := range rs.Instances {
		if in.ID == bad.ID {
			continue
		}
		if evs := seen.of(in.ID); len(evs) != 1 {
			t.Errorf("%s: %d events, want only its first healthy: %+v", in.ID, len(evs), evs)
		}
	}
	if evs := seen.of(bad.ID); len(evs) != 5 {
		t.Errorf("%s: %d events, want healthy, ejected, healthy, ejected, healthy: %+v", bad.ID, len(evs), evs)
	}
}

func TestOutlierMaxPercent(t *testing.T) {
	srv := eventstest.Start(t, "")
	nc, js := srv.Connect(t)
	seen := collect(t, nc)
	startWith(t, nc, "one", false, outlierConfig(time.Minute))
	rs, _ := appWith(t, "api", 4)
	solo, _ := appWith(t, "solo", 1)
	publishRouting(t, nc, rs)
	publishRouting(t, nc, solo)
	waitHealthy(t, seen, rs)
	waitHealthy(t, seen, solo)
	waitConsumers(t, js, 1)

	// Three of four fail: at most 50% may be out, so two are ejected.
	publishMetrics(t, nc, "api", gatewayErrors(rs.Instances[0]), gatewayErrors(rs.Instances[1]), gatewayErrors(rs.Instances[2]), fine(rs.Instances[3]))
	// A single instance is never ejected at 50%.
	publishMetrics(t, nc, "solo", gatewayErrors(solo.Instances[0]))
	count := func() (n int) {
		for _, in := range rs.Instances {
			for _, ej := range seen.ejections(in.ID) {
				n++
				if !strings.HasPrefix(ej.LastError, "outlier: 6 consecutive gateway errors; ejected for 1m0s") {
					t.Errorf("%s: last_error %q", in.ID, ej.LastError)
				}
			}
		}
		return n
	}
	waitFor(t, 5*time.Second, "two ejections", func() bool { return count() >= 2 })
	time.Sleep(time.Second)
	if n := count(); n != 2 {
		t.Fatalf("%d ejections, want 2", n)
	}
	if n := len(seen.ejections(rs.Instances[3].ID)); n != 0 {
		t.Fatal("the fine instance was ejected")
	}
	if n := len(seen.ejections(solo.Instances[0].ID)); n != 0 {
		t.Fatal("the only instance of solo was ejected")
	}
}

func TestOutlierReplicasEjectOnce(t *testing.T) {
	srv := eventstest.Start(t, "")
	nc, js := srv.Connect(t)
	seen := collect(t, nc)
	reps := []*running{}
	for _, name := range []string{"a", "b", "c"} {
		reps = append(reps, startWith(t, nc, name, false, outlierConfig(time.Minute)))
	}
	for _, r := range reps {
		waitFor(t, 10*time.Second, r.svc.Replica()+" sees all three", func() bool { return len(r.svc.Members()) == 3 })
	}
	rs, _ := appWith(t, "web", 6)
	publishRouting(t, nc, rs)
	waitHealthy(t, seen, rs)
	waitConsumers(t, js, 3)

	var traffic []events.InstanceTraffic
	for i, in := range rs.Instances {
		if i == 4 {
			traffic = append(traffic, failing(in))
		} else {
			traffic = append(traffic, fine(in))
		}
	}
	publishMetrics(t, nc, "web", traffic...)
	bad := rs.Instances[4].ID
	waitFor(t, 5*time.Second, bad+" ejected", func() bool { return len(seen.ejections(bad)) > 0 })
	time.Sleep(time.Second)
	if evs := seen.ejections(bad); len(evs) != 1 {
		t.Fatalf("%d ejected transitions, want exactly 1: %+v", len(evs), evs)
	}
	if evs := seen.of(bad); len(evs) != 2 {
		t.Fatalf("%s: events %+v, want healthy then ejected", bad, evs)
	}
	// Every replica's tracker knows when the ejection ends (from the
	// stored state), so whichever takes the target over keeps it out.
	key := events.HealthKey("web", bad)
	for _, r := range reps {
		waitFor(t, 5*time.Second, r.svc.Replica()+" knows the ejection", func() bool {
			return !r.svc.tracker.ReturnAt(key).IsZero()
		})
		ej := seen.ejections(bad)[0]
		if ej.Ejections != 1 || ej.EjectedUntil == nil || ej.EjectedUntil.Sub(ej.Since) != time.Minute {
			t.Fatalf("ejection %+v, want the first, for 1m", ej)
		}
	}
}

func TestOutlierConfig(t *testing.T) {
	var cfg Config
	if err := env.Parse(&cfg); err != nil {
		t.Fatal(err)
	}
	want := outlier.Rules{ConsecutiveGateway: 5, Consecutive5xx: 5, FailurePercent: 50, MinRequests: 10}
	if cfg.rules() != want || cfg.OutlierBaseEjection != 30*time.Second || cfg.OutlierMaxEjection != 5*time.Minute || cfg.OutlierMaxPercent != 50 {
		t.Fatalf("defaults: %+v", cfg)
	}
	if err := cfg.validateOutlier(); err != nil {
		t.Fatalf("defaults refused: %v", err)
	}
	tests := []struct {
		edit func(*Config)
		want string // the variable the error names; "" when valid
	}{
		{func(c *Config) { c.OutlierConsecutiveGateway = -1 }, "ORCHESTRY_HEALTH_OUTLIER_CONSECUTIVE_GATEWAY"},
		{func(c *Config) { c.OutlierConsecutive5xx = -1 }, "ORCHESTRY_HEALTH_OUTLIER_CONSECUTIVE_5XX"},
		{func(c *Config) { c.OutlierFailurePercent = 101 }, "ORCHESTRY_HEALTH_OUTLIER_FAILURE_PERCENT"},
		{func(c *Config) { c.OutlierMinRequests = -5 }, "ORCHESTRY_HEALTH_OUTLIER_MIN_REQUESTS"},
		{func(c *Config) { c.OutlierMaxPercent = 120 }, "ORCHESTRY_HEALTH_OUTLIER_MAX_PERCENT"},
		{func(c *Config) { c.OutlierBaseEjection = 0 }, "ORCHESTRY_HEALTH_OUTLIER_BASE_EJECTION"},
		{func(c *Config) { c.OutlierMaxEjection = time.Second }, "ORCHESTRY_HEALTH_OUTLIER_MAX_EJECTION"},
		{func(c *Config) {
			c.OutlierConsecutiveGateway, c.OutlierConsecutive5xx, c.OutlierFailurePercent = 0, 0, 0
			c.OutlierBaseEjection = 0
		}, ""}, // every rule off: the times do not matter
		{func(c *Config) { c.OutlierMaxPercent = 0 }, ""},
	}
	for _, tc := range tests {
		c := cfg
		tc.edit(&c)
		c.Replica = "x"
		if tc.want == "" {
			if err := c.validateOutlier(); err != nil {
				t.Errorf("refused: %v", err)
			}
			continue
		}
		_, err := New(nil, c, zerolog.Nop()) // refused before it uses the connection
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %v, want one naming %s", err, tc.want)
		}
	}
}
