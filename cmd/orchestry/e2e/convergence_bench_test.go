package e2e

import (
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orchestry/orchestry/pkg/events"
)

// The convergence experiment: apps of three instances each under a steady
// request load; one instance per app dies at once (its connections are
// reset once a request is read, so every request it still gets is
// recorded), and for convWindow the benchmark watches what it is sent. A
// trial's convergence is the time from the death to the last traffic
// request the dead instance received (zero if none). Mode "health" runs the
// health service (the app probed every second, out after two failures);
// mode "passive" has no health service and relies on NGINX's passive
// max_fails=3 fail_timeout=10s alone. The trials of a mode share one NGINX
// with one worker, so they are not independent: a reload (health removing
// any app's dead instance) starts a worker whose passive failure counts are
// zero, and every dead instance still listed gets up to max_fails requests
// again.
const (
	convApps    = 20                              // trials per mode, run in parallel
	convEvery   = 10 * time.Millisecond           // request interval per app
	convWarmup  = time.Second                     // load before the death
	convWindow  = 15 * time.Second                // observation after the death; longer than fail_timeout
	convFailTTL = 10 * time.Second                // the rendered fail_timeout
	convPoll    = 20 * time.Millisecond           // live-config polling interval
	convStall   = time.Second                     // a request slower than this means the load stalled
	convMaxReqs = 10 * int(time.Minute/convEvery) // per app, a bound on the loop
)

// convTrial is one app's outcome.
type convTrial struct {
	last    time.Duration // death to the last traffic request received; 0 if none
	hits    int           // traffic requests received after the death
	late    int           // of which later than fail_timeout after the death
	removed time.Duration // death to the live config no longer listing it; -1: not in the window
}

// convMode is one mode's outcome.
type convMode struct {
	name       string
	trials     []convTrial
	ok, failed int64
	firstErr   string
	reloads    int           // configs applied during the window
	slowest    time.Duration // the slowest client request, stalls included
}

var convergence struct {
	once  sync.Once
	modes []convMode
}

// BenchmarkConvergence measures, per mode, the time from a backend's death
// to the last request sent to it (p50/p99 over convApps trials) and the
// mean number of requests the dead instance received. It runs the
// experiment once whatever b.N is (run it with -benchtime 1x); ns/op is
// meaningless and suppressed.
func BenchmarkConvergence(b *testing.B) {
	convergence.once.Do(func() {
		convergence.modes = []convMode{
			runConvergence(b, "health", withHealthService),
			runConvergence(b, "passive"),
		}
		fmt.Fprint(os.Stdout, convergenceTable(convergence.modes))
	})
	if len(convergence.modes) == 0 {
		b.Fatal("the experiment did not complete")
	}
	for _, m := range convergence.modes {
		last := m.lasts()
		b.ReportMetric(ms(percentile(last, 50)), "p50-ms/"+m.name)
		b.ReportMetric(ms(percentile(last, 99)), "p99-ms/"+m.name)
		b.ReportMetric(m.meanHits(), "hits/"+m.name)
	}
	b.ReportMetric(0, "ns/op")
}

// runConvergence runs the experiment in one fresh stack.
func runConvergence(b *testing.B, name string, opts ...stackOption) convMode {
	s := newStack(b, opts...)
	check := ""
	if s.withHealth {
		check = healthCheckYAML
	}
	type app struct {
		name   string
		port   int
		victim *backend
	}
	// The backends first, then the app ports, all held open until every
	// one is chosen: no two alike, and none a backend's.
	bks := make([][]*backend, convApps)
	for i := range bks {
		for j := range 3 {
			bks[i] = append(bks[i], startBackend(b, fmt.Sprintf("conv-%d-%d", i, j)))
		}
	}
	ports := heldPorts(b, convApps)
	apps := make([]app, convApps)
	for i := range apps {
		apps[i] = app{name: fmt.Sprintf("conv-%d", i), port: ports[i], victim: bks[i][1]}
		s.putApp(apps[i].name, apps[i].port, check)
		for _, bk := range bks[i] {
			s.addBackend(apps[i].name, bk)
		}
	}
	for i, a := range apps {
		waitServes(b, a.port, bks[i][0].ID, bks[i][1].ID, bks[i][2].ID)
	}

	// One paced, bounded request loop per app.
	var ok, failed, slowest atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	until := time.Now().Add(convWarmup + convWindow + 10*time.Second)
	var wg sync.WaitGroup
	for _, a := range apps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 5 * time.Second}
			defer client.CloseIdleConnections()
			tick := time.NewTicker(convEvery)
			defer tick.Stop()
			url := fmt.Sprintf("http://127.0.0.1:%d/", a.port)
			for range convMaxReqs {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				if time.Now().After(until) {
					return
				}
				start := time.Now()
				resp, err := client.Get(url)
				for took := int64(time.Since(start)); ; {
					if was := slowest.Load(); took <= was || slowest.CompareAndSwap(was, took) {
						break
					}
				}
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, resp.Status)
					continue
				}
				ok.Add(1)
			}
		}()
	}
	halt := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer halt()

	time.Sleep(convWarmup)
	for _, a := range apps {
		if a.victim.lastServed().IsZero() {
			b.Fatalf("%s: its instance %s got no traffic before its death", a.name, a.victim.ID)
		}
	}

	s.drainReports()
	deaths := make([]time.Time, len(apps))
	for i, a := range apps {
		deaths[i] = time.Now()
		a.victim.dead.Store(true)
	}
	removed := make([]time.Duration, len(apps))
	for i := range removed {
		removed[i] = -1
	}
	end := deaths[len(deaths)-1].Add(convWindow)
	for now := time.Now(); now.Before(end); now = time.Now() {
		for i, a := range apps {
			if removed[i] < 0 && !s.liveUpstreamHas(a.name, a.victim.Port) {
				removed[i] = time.Since(deaths[i])
			}
		}
		time.Sleep(min(convPoll, time.Until(end)))
	}
	halt()

	m := convMode{name: name, ok: ok.Load(), failed: failed.Load(), slowest: time.Duration(slowest.Load())}
	for more := true; more; {
		select {
		case r := <-s.reports:
			if r.Outcome == events.OutcomeApplied {
				m.reloads++
			}
		default:
			more = false
		}
	}
	if e, _ := firstErr.Load().(string); e != "" {
		m.firstErr = e
	}
	for i, a := range apps {
		tr := convTrial{removed: removed[i]}
		for _, at := range a.victim.seenDead() {
			d := at.Sub(deaths[i])
			if d > convWindow {
				continue // after the window, during the halt
			}
			tr.hits++
			tr.last = max(tr.last, d)
			if d > convFailTTL {
				tr.late++
			}
		}
		m.trials = append(m.trials, tr)
	}
	if m.ok < int64(convApps)*int64(convWindow/convEvery)/4 {
		b.Fatalf("%s: only %d requests answered (%d failed); the load did not run", name, m.ok, m.failed)
	}
	return m
}

// heldPorts returns n distinct loopback ports that were free a moment ago.
func heldPorts(t testing.TB, n int) []int {
	t.Helper()
	var out []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		out = append(out, ln.Addr().(*net.TCPAddr).Port)
	}
	return out
}

func (m convMode) lasts() []time.Duration {
	out := make([]time.Duration, len(m.trials))
	for i, t := range m.trials {
		out[i] = t.last
	}
	return out
}

func (m convMode) meanHits() float64 {
	n := 0
	for _, t := range m.trials {
		n += t.hits
	}
	return float64(n) / float64(len(m.trials))
}

// percentile is the nearest-rank p-th percentile of ds (0 if empty).
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// convergenceTable renders the outcome as a markdown table.
func convergenceTable(modes []convMode) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "\nConvergence: %d trials per mode, %s observed after the death, a request every %s per app\n\n",
		convApps, convWindow, convEvery)
	sb.WriteString("| mode | last request after death p50 | p99 | requests to the dead instance (mean) | trials sent a request after fail_timeout (10s) | out of the live config p50 / p99 | reloads in the window | client errors | slowest request |\n")
	sb.WriteString("|---|---|---|---|---|---|---|---|---|\n")
	for _, m := range modes {
		last := m.lasts()
		late := 0
		var removed []time.Duration
		for _, t := range m.trials {
			if t.late > 0 {
				late++
			}
			if t.removed >= 0 {
				removed = append(removed, t.removed)
			}
		}
		out := "never"
		if len(removed) == len(m.trials) {
			out = fmt.Sprintf("%s / %s", round(percentile(removed, 50)), round(percentile(removed, 99)))
		} else if len(removed) > 0 {
			out = fmt.Sprintf("%d of %d trials", len(removed), len(m.trials))
		}
		errs := fmt.Sprintf("%d of %d", m.failed, m.ok+m.failed)
		if m.firstErr != "" {
			errs += " (first: " + m.firstErr + ")"
		}
		fmt.Fprintf(&sb, "| %s | %s | %s | %.1f | %d of %d | %s | %d | %s | %s |\n", m.name,
			round(percentile(last, 50)), round(percentile(last, 99)),
			m.meanHits(), late, len(m.trials), out, m.reloads, errs, round(m.slowest))
	}
	for _, m := range modes {
		if m.slowest > convStall {
			fmt.Fprintf(&sb, "WARNING: %s: a request took %s; the load stalled (a busy machine?) and the figures of that mode are not to be trusted\n",
				m.name, round(m.slowest))
		}
	}
	sb.WriteString("\n")
	return sb.String()
}

func round(d time.Duration) time.Duration { return d.Round(time.Millisecond) }
