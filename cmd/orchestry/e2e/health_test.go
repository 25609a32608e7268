package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/orchestry/orchestry/pkg/events"
)

// The health check of the apps in these tests: probes every second, two
// failures take an instance out, two passes bring it back.
const (
	probePeriod      = time.Second
	failureThreshold = 2
	successThreshold = 2
	// renderBudget is what the renderer may add after health's verdict:
	// coalescing, nginx -t, reload and the version check.
	renderBudget = 3 * time.Second
)

var healthCheckYAML = fmt.Sprintf(`healthCheck:
  protocol: HTTP
  path: /healthz
  periodSeconds: %d
  timeoutSeconds: 1
  failureThreshold: %d
  successThreshold: %d
`, int(probePeriod/time.Second), failureThreshold, successThreshold)

// addBackend registers b as an instance of app through the REST API.
func (s *stack) addBackend(app string, b *backend) {
	s.t.Helper()
	body, _ := json.Marshal(map[string]any{"id": b.ID, "ip": "127.0.0.1", "port": b.Port})
	code, out := s.do(http.MethodPost, "/v1/apps/"+app+"/instances", "application/json", string(body))
	if code != http.StatusCreated && code != http.StatusOK {
		s.t.Fatalf("POST instance %s: %d %s", b.ID, code, out)
	}
}

// healthLog records every instance.health event of one app.
type healthLog struct {
	mu     sync.Mutex
	states []events.HealthState
}

// watchHealth subscribes to instance.health.<app> (core NATS: it sees what
// is published from now on).
func (s *stack) watchHealth(app string) *healthLog {
	s.t.Helper()
	l := &healthLog{}
	sub, err := s.nc.Subscribe(events.InstanceHealth(app), func(m *nats.Msg) {
		ev, err := events.Decode(m.Subject, m.Data)
		if err != nil {
			s.t.Errorf("instance.health undecodable: %v", err)
			return
		}
		l.mu.Lock()
		l.states = append(l.states, ev.Payload.(events.HealthState))
		l.mu.Unlock()
	})
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { _ = sub.Unsubscribe() })
	return l
}

// of returns the states published for one instance, in order.
func (l *healthLog) of(id string) []events.HealthState {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []events.HealthState
	for _, h := range l.states {
		if h.InstanceID == id {
			out = append(out, h)
		}
	}
	return out
}

// wait returns the first state of id, after the first skip ones, that is
// state (at most within d).
func (l *healthLog) wait(t *testing.T, id, state string, skip int, d time.Duration) events.HealthState {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		hs := l.of(id)
		for _, h := range hs[min(skip, len(hs)):] {
			if h.State == state {
				return h
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: no %s state within %s; published: %+v", id, state, d, l.of(id))
	return events.HealthState{}
}

// liveUpstreamHas reports whether the live config of app lists port.
func (s *stack) liveUpstreamHas(app string, port int) bool {
	conf := s.readFile("live/apps/" + app + ".conf")
	return strings.Contains(conf, "127.0.0.1:"+strconv.Itoa(port)+" ")
}

// waitLive waits (at most d) until the live upstream of app does (has) or
// does not list port, and returns when that was seen.
func (s *stack) waitLive(app string, port int, has bool, d time.Duration) time.Time {
	s.t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if s.liveUpstreamHas(app, port) == has {
			return time.Now()
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.t.Fatalf("live config of %s: listing port %d is not %v after %s:\n%s", app, port, has, d, s.readFile("live/apps/"+app+".conf"))
	return time.Time{}
}

// apiHealth is the health GET /v1/apps/{app}/instances shows for id.
func (s *stack) apiHealth(app, id string) *events.HealthState {
	s.t.Helper()
	body := s.mustDo(http.StatusOK, http.MethodGet, "/v1/apps/"+app+"/instances", "", "")
	var view struct {
		Instances []struct {
			ID     string              `json:"id"`
			Health *events.HealthState `json:"health"`
		} `json:"instances"`
	}
	if err := json.Unmarshal([]byte(body), &view); err != nil {
		s.t.Fatal(err)
	}
	for _, in := range view.Instances {
		if in.ID == id {
			return in.Health
		}
	}
	return nil
}

// load is a bounded request loop against one port.
type load struct {
	ok, failed atomic.Int64
	firstErr   atomic.Value
	byInstance sync.Map // id -> *atomic.Int64
	stop       chan struct{}
	wg         sync.WaitGroup
}

// startLoad sends requests with workers clients until stopped or max
// requests were sent in all.
func startLoad(t *testing.T, port, workers int, max int64) *load {
	l := &load{stop: make(chan struct{})}
	var sent atomic.Int64
	for range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			client := &http.Client{Timeout: 10 * time.Second}
			defer client.CloseIdleConnections()
			for sent.Add(1) <= max {
				select {
				case <-l.stop:
					return
				default:
				}
				resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
				if err != nil {
					l.failed.Add(1)
					l.firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					l.failed.Add(1)
					l.firstErr.CompareAndSwap(nil, resp.Status)
					continue
				}
				l.ok.Add(1)
				c, _ := l.byInstance.LoadOrStore(resp.Header.Get("X-Instance"), new(atomic.Int64))
				c.(*atomic.Int64).Add(1)
			}
		}()
	}
	t.Cleanup(l.halt)
	return l
}

// halt stops the loop and waits for it.
func (l *load) halt() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
}

// served is how many requests id answered so far.
func (l *load) served(id string) int64 {
	c, ok := l.byInstance.Load(id)
	if !ok {
		return 0
	}
	return c.(*atomic.Int64).Load()
}

// healthStack starts a stack with the health service and the app "web" on
// three fresh backends, and waits until all three are served.
func healthStack(t *testing.T) (*stack, *healthLog, []*backend, int) {
	t.Helper()
	s := newStack(t, withHealthService)
	bs := []*backend{startBackend(t, "b1"), startBackend(t, "b2"), startBackend(t, "b3")}
	port := freePort(t)
	log := s.watchHealth("web")
	s.putApp("web", port, healthCheckYAML)
	for _, b := range bs {
		s.addBackend("web", b)
	}
	waitServes(t, port, "b1", "b2", "b3")
	return s, log, bs, port
}

func TestAKilledInstanceLeavesRotationWithoutAFailedRequestAndReturnsAfterSuccessThreshold(t *testing.T) {
	s, hl, bs, port := healthStack(t)
	victim := bs[1]
	before := len(hl.of(victim.ID))
	l := startLoad(t, port, 4, 200_000)
	time.Sleep(500 * time.Millisecond)

	killed := time.Now()
	victim.Kill()
	down := hl.wait(t, victim.ID, events.HealthUnhealthy, before, 20*time.Second)
	out := s.waitLive("web", victim.Port, false, 20*time.Second)
	// The first failing probe comes at most one period after the kill, the
	// verdict failureThreshold-1 periods later.
	budget := time.Duration(failureThreshold)*probePeriod + probePeriod/2 + renderBudget
	if took := out.Sub(killed); took > budget {
		t.Errorf("killed instance left the live config after %s, budget %s", took, budget)
	}
	if down.ConsecutiveFailures < failureThreshold || down.LastError == "" {
		t.Errorf("unhealthy state: %+v, want %d consecutive failures and the last error", down, failureThreshold)
	}
	t.Logf("killed %s: unhealthy after %s, out of the live config after %s", victim.ID,
		down.Since.Sub(killed).Round(time.Millisecond), out.Sub(killed).Round(time.Millisecond))

	// The API shows why (its view follows the health KV bucket).
	var shown *events.HealthState
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if shown = s.apiHealth("web", victim.ID); shown != nil && shown.Revision == down.Revision {
			break
		}
	}
	if shown == nil || shown.State != events.HealthUnhealthy || shown.LastError == "" ||
		!shown.Since.Equal(down.Since) || shown.Revision != down.Revision {
		t.Errorf("API shows %s as %+v, want the published unhealthy state %+v", victim.ID, shown, down)
	}

	revived := time.Now()
	victim.Revive()
	up := hl.wait(t, victim.ID, events.HealthHealthy, before, 20*time.Second)
	back := s.waitLive("web", victim.Port, true, 20*time.Second)
	if up.ConsecutiveSuccesses < successThreshold {
		t.Errorf("healthy after %d passes, want %d", up.ConsecutiveSuccesses, successThreshold)
	}
	if took := up.Since.Sub(revived); took < time.Duration(successThreshold-1)*probePeriod-100*time.Millisecond {
		t.Errorf("back after %s: sooner than %d passes %s apart allow", took, successThreshold, probePeriod)
	}
	servedBefore := l.served(victim.ID)
	deadline := time.Now().Add(10 * time.Second)
	for l.served(victim.ID) == servedBefore && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	l.halt()
	if l.served(victim.ID) == servedBefore {
		t.Errorf("%s is in the live config again but got no traffic", victim.ID)
	}
	t.Logf("revived %s: healthy after %s, in the live config after %s", victim.ID,
		up.Since.Sub(revived).Round(time.Millisecond), back.Sub(revived).Round(time.Millisecond))

	if l.failed.Load() != 0 {
		t.Fatalf("%d of %d requests failed; first: %v", l.failed.Load(), l.failed.Load()+l.ok.Load(), l.firstErr.Load())
	}
	if l.ok.Load() < 100 {
		t.Fatalf("only %d requests made; the load did not run", l.ok.Load())
	}
	if got := hl.of(victim.ID)[before:]; len(got) != 2 {
		t.Errorf("want exactly two transitions (unhealthy, healthy), got %+v", got)
	}
	t.Logf("%d requests, none failed", l.ok.Load())
}

func TestAFlappingHealthCheckCausesNoReloadPerFlap(t *testing.T) {
	s, hl, bs, port := healthStack(t)
	flapper := bs[2]
	before := len(hl.of(flapper.ID))
	s.settle()
	probesBefore := flapper.probes.Load()
	flapper.flap.Store(true)
	time.Sleep(8 * probePeriod)
	flapper.flap.Store(false)
	flaps := flapper.probes.Load() - probesBefore
	if flaps < 5 {
		t.Fatalf("only %d probes while flapping; the health service did not probe", flaps)
	}
	reloads := 0
	for {
		select {
		case r := <-s.reports:
			if r.Outcome == events.OutcomeApplied {
				reloads++
				t.Logf("reload: %+v", r)
			}
			continue
		default:
		}
		break
	}
	if reloads != 0 || len(hl.of(flapper.ID)) != before {
		t.Errorf("%d probe results alternating pass/fail caused %d reloads and transitions %+v; want none (thresholds %d/%d)",
			flaps, reloads, hl.of(flapper.ID)[before:], failureThreshold, successThreshold)
	}
	if got := hits(t, port, 30); got[flapper.ID] == 0 {
		t.Errorf("the flapping instance left rotation: %v", got)
	}
	t.Logf("%d alternating probe results, %d reloads", flaps, reloads)
}

func TestAnAppWithNoHealthyInstanceAnswers503(t *testing.T) {
	s, hl, bs, port := healthStack(t)
	for _, b := range bs {
		b.Kill()
	}
	for _, b := range bs {
		hl.wait(t, b.ID, events.HealthUnhealthy, 0, 20*time.Second)
	}
	deadline := time.Now().Add(10 * time.Second)
	var got map[string]int
	for time.Now().Before(deadline) {
		if got = hits(t, port, 3); got["status:503"] == 3 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got["status:503"] != 3 {
		t.Fatalf("with every instance down the app answers %v, want 503s", got)
	}
	if conf := s.readFile("live/apps/web.conf"); strings.Contains(conf, "upstream") {
		t.Errorf("an upstream is still rendered:\n%s", conf)
	}
}

func TestADrainingInstanceLeavesTrafficWithoutAFailedRequestIsNotProbedAndReturns(t *testing.T) {
	s, hl, bs, port := healthStack(t)
	b := bs[0]
	before := len(hl.of(b.ID))
	register := func(draining bool) {
		body, _ := json.Marshal(map[string]any{"id": b.ID, "ip": "127.0.0.1", "port": b.Port, "draining": draining})
		s.mustDo(http.StatusOK, http.MethodPost, "/v1/apps/web/instances", "application/json", string(body))
	}
	l := startLoad(t, port, 2, 100_000)
	register(true)
	drained := hl.wait(t, b.ID, events.HealthDraining, before, 10*time.Second)
	s.waitLive("web", b.Port, false, 10*time.Second)
	// No probes while draining (one may have been under way).
	probes := b.probes.Load()
	time.Sleep(3 * probePeriod)
	if n := b.probes.Load() - probes; n > 1 {
		t.Errorf("%d probes of a draining instance in %s", n, 3*probePeriod)
	}
	if st := s.apiHealth("web", b.ID); st == nil || st.State != events.HealthDraining {
		t.Errorf("API shows %+v, want draining", st)
	}
	register(false)
	up := hl.wait(t, b.ID, events.HealthHealthy, before, 10*time.Second)
	s.waitLive("web", b.Port, true, 10*time.Second)
	l.halt()
	if l.failed.Load() != 0 {
		t.Fatalf("%d of %d requests failed; first: %v", l.failed.Load(), l.failed.Load()+l.ok.Load(), l.firstErr.Load())
	}
	if got := hl.of(b.ID)[before:]; len(got) != 3 || got[1].State != events.HealthUnhealthy {
		t.Errorf("transitions %+v, want draining, unhealthy (the initial state), healthy", got)
	}
	t.Logf("drained at %s, healthy again %s after undraining; %d requests, none failed",
		drained.Since.Format(time.TimeOnly), up.Since.Sub(drained.Since).Round(time.Millisecond), l.ok.Load())
}
