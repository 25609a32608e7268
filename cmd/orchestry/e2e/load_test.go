package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/orchestry/orchestry/pkg/events"
	routingload "github.com/orchestry/orchestry/services/routing/load"
)

// publishStats publishes one instance.stats report for instance id of app,
// as an autoscaler would.
func (s *stack) publishStats(app, id string, cpu float64) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r := events.StatsReport{InstanceID: id, CPUPercent: cpu, MemoryPercent: 10, ObservedAt: time.Now().UTC()}
	if _, err := events.Publish(ctx, s.js, "autoscaler/test", events.InstanceStats(app), r); err != nil {
		s.t.Fatal(err)
	}
}

// statsApplied waits until routing's stats consumer has acknowledged every
// report published so far (at most 15s).
func (s *stack) statsApplied() {
	s.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, err := s.js.Consumer(ctx, events.StreamStats, routingload.Consumer)
		if err == nil {
			info, ierr := c.Info(ctx)
			if ierr == nil && info.NumPending == 0 && info.NumAckPending == 0 {
				cancel()
				return
			}
		}
		cancel()
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Fatal("stats reports not applied within 15s")
}

// reloadsWhile counts the configs made live while step runs and until the
// reports settle.
func (s *stack) reloadsWhile(step func()) int {
	s.t.Helper()
	s.drainReports()
	step()
	s.statsApplied()
	n := 0
	quiet := time.After(1500 * time.Millisecond) // more than the coalescing window and a reload
	for {
		select {
		case r := <-s.reports:
			if r.Outcome == events.OutcomeApplied {
				n++
			}
		case <-quiet:
			return n
		}
	}
}

// band is the load band GET /v1/apps/{app}/instances shows for id.
func (s *stack) band(app, id string) int {
	s.t.Helper()
	body := s.mustDo(http.StatusOK, http.MethodGet, "/v1/apps/"+app+"/instances", "", "")
	var view struct {
		Instances []events.Instance `json:"instances"`
	}
	if err := json.Unmarshal([]byte(body), &view); err != nil {
		s.t.Fatalf("instances: %v: %s", err, body)
	}
	for _, in := range view.Instances {
		if in.ID == id {
			return in.LoadBand
		}
	}
	s.t.Fatalf("instance %s not listed: %s", id, body)
	return 0
}

func TestANoisyStatsStreamReloadsNginxAtMostOncePerBandChange(t *testing.T) {
	s := newStack(t)
	port := freePort(t)
	s.putApp("web", port, "  max_conns: 100\n")
	a, b := startBackend(t, "a"), startBackend(t, "b")
	s.addBackend("web", a)
	s.addBackend("web", b)
	waitServes(t, port, "a", "b")
	s.settle()

	// The first report gives a a band: one change, one reload.
	if n := s.reloadsWhile(func() { s.publishStats("web", "a", 30) }); n != 1 || s.band("web", "a") != 1 {
		t.Fatalf("first report: %d reloads, band %d; want 1 reload to band 1", n, s.band("web", "a"))
	}
	// Noise across the 50% boundary, inside the hysteresis margin.
	noisy := func(lo, hi float64) func() {
		return func() {
			for i := range 60 {
				v := lo
				if i%2 == 1 {
					v = hi
				}
				s.publishStats("web", "a", v)
			}
		}
	}
	if n := s.reloadsWhile(noisy(46, 54)); n != 0 {
		t.Errorf("60 reports between 46%% and 54%% caused %d reloads, want 0", n)
	}
	// A real rise: one reload, and noise at the new level adds none.
	if n := s.reloadsWhile(func() { s.publishStats("web", "a", 90) }); n != 1 || s.band("web", "a") != 4 {
		t.Fatalf("a rise to 90%%: %d reloads, band %d; want 1 reload to band 4", n, s.band("web", "a"))
	}
	if n := s.reloadsWhile(noisy(82, 97)); n != 0 {
		t.Errorf("60 reports between 82%% and 97%% caused %d reloads, want 0", n)
	}
	conf := s.readFile("live/apps/web.conf")
	if !strings.Contains(conf, "weight=1 max_fails=3 fail_timeout=10s max_conns=25") || !strings.Contains(conf, "weight=4 max_fails=3 fail_timeout=10s max_conns=100") {
		t.Errorf("live upstream does not weigh a at band 4 against b:\n%s", conf)
	}
	// Traffic follows the weights: a gets about 1/5.
	got := hits(t, port, 100)
	if got["a"] < 10 || got["a"] > 30 || got["a"]+got["b"] != 100 {
		t.Errorf("100 requests at weights 1:4: %v", got)
	}
}
