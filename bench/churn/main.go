// Command churn measures what config churn costs the traffic: a steady
// closed-loop load (fixed concurrency, kept-alive connections) on one app
// while another app's spec changes 10 times a second through the REST API,
// each change a new config for NGINX, against the same load with no churn,
// in alternating phases of the same run. It reports the failed requests
// (the goal is none), p99 latency with and without churn, the reloads the
// renderer made, and the old NGINX worker generations still shutting down
// at the end of each churn phase.
//
// Orchestry runs in this process (package stack), as deployed.
//
//	go run ./bench/churn -mode quick -out bench/results/raw
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/orchestry/orchestry/bench/internal/load"
	"github.com/orchestry/orchestry/bench/internal/procs"
	"github.com/orchestry/orchestry/bench/internal/run"
	"github.com/orchestry/orchestry/bench/internal/stack"
	"github.com/orchestry/orchestry/bench/result"
	"github.com/orchestry/orchestry/bench/stats"
	"github.com/orchestry/orchestry/pkg/events"
)

// probed is the health check of both apps: probed every second, so their
// instances are served soon after the start.
const probed = `healthCheck:
  protocol: HTTP
  path: /healthz
  periodSeconds: 1
  timeoutSeconds: 1
`

type config struct {
	phase    time.Duration
	rounds   int
	rate     int
	workers  int
	backends int
}

func main() {
	f := run.Register()
	var c config
	flag.DurationVar(&c.phase, "phase", 0, "length of each phase, with and without churn (default: quick 15s, full 60s)")
	flag.IntVar(&c.rounds, "rounds", 0, "rounds of (no churn, churn) (default: quick 1, full 2)")
	flag.IntVar(&c.rate, "rate", 10, "config changes per second during churn")
	flag.IntVar(&c.workers, "concurrency", 16, "concurrent connections of the load")
	flag.IntVar(&c.backends, "backends", 4, "instances of the loaded app")
	flag.Parse()
	quick := f.Quick()
	if c.phase <= 0 {
		c.phase = map[bool]time.Duration{true: 15 * time.Second, false: 60 * time.Second}[quick]
	}
	if c.rounds <= 0 {
		c.rounds = map[bool]int{true: 1, false: 2}[quick]
	}
	if c.phase > 10*time.Minute || c.rounds > 10 || c.rate < 1 || c.rate > 100 || c.workers < 1 || c.workers > 256 || c.backends < 1 || c.backends > 64 {
		fmt.Fprintln(os.Stderr, "bad flags: phase <= 10m, rounds <= 10, 1 <= rate <= 100, 1 <= concurrency <= 256, 1 <= backends <= 64")
		os.Exit(2)
	}
	run.Main("churn", func(ctx context.Context, dir string) error {
		res := result.New("churn", "Churn: traffic during config changes", f.Mode)
		res.Summary = "A steady closed-loop load on one app while another app's spec changes 10 times a second through the REST API, against the same load with no churn in alternating phases: failed requests, latency, reloads and old NGINX worker generations left."
		res.Param("load", fmt.Sprintf("Go closed loop, %d connections, kept alive, on one app of %d instances", c.workers, c.backends))
		res.Param("churn", fmt.Sprintf("%d changes/s to another app's spec (conn_limit) through the REST API", c.rate))
		res.Param("phase length", c.phase)
		res.Param("rounds of (no churn, churn)", c.rounds)
		if err := measure(ctx, dir, c, res); err != nil {
			return err
		}
		return res.Write(f.Out)
	})
}

// phase is one measured phase.
type phase struct {
	load     load.Result
	changes  int
	reloads  int64
	old      int // workers shutting down at the end
	oldAfter int // and one second later
}

func measure(ctx context.Context, dir string, c config, res *result.File) error {
	st, err := stack.Start(stack.Options{Dir: dir, Health: true, Log: run.Logger()})
	if err != nil {
		return err
	}
	defer st.Close()
	res.Param("coalescing window (ORCHESTRY_RENDER_COALESCE)", st.Renderer.Coalesce)
	var reloads atomic.Int64
	sub, err := st.NC.Subscribe(events.ConfigRenderedWildcard, func(m *nats.Msg) {
		if ev, err := events.Decode(m.Subject, m.Data); err == nil && ev.Payload.(events.RenderReport).Outcome == events.OutcomeApplied {
			reloads.Add(1)
		}
	})
	if err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	defer func() { _ = sub.Unsubscribe() }()

	ports := make([]int, 2)
	for i := range ports {
		if ports[i], err = stack.FreePort(); err != nil {
			return err
		}
	}
	for i, name := range []string{"web", "churn"} {
		if err := st.PutApp(name, ports[i], probed); err != nil {
			return err
		}
		n := c.backends
		if name == "churn" {
			n = 1
		}
		for j := range n {
			b, err := stack.StartBackend(fmt.Sprintf("%s-%d", name, j))
			if err != nil {
				return err
			}
			defer b.Close()
			if err := st.AddInstance(name, events.Instance{ID: b.ID, IP: "127.0.0.1", Port: b.Port}); err != nil {
				return err
			}
		}
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/", ports[0])
	if err := waitServing(ctx, url); err != nil {
		return err
	}
	master, err := st.MasterPid()
	if err != nil {
		return err
	}
	var quiet, churn []phase
	for r := range c.rounds {
		for _, withChurn := range []bool{false, true} {
			p, err := onePhase(ctx, st, c, url, ports[1], withChurn, &reloads, master)
			if err != nil {
				return fmt.Errorf("round %d: %w", r+1, err)
			}
			kind := "no churn"
			if withChurn {
				kind = "churn"
				churn = append(churn, p)
			} else {
				quiet = append(quiet, p)
			}
			fmt.Printf("round %d %-8s  %7d ok  %4d failed  p99 %6.2f ms  changes %4d  reloads %3d  old workers at the end %d (1 s later %d)\n",
				r+1, kind, p.load.OK, p.load.Failed, stats.Percentile(stats.Durations(p.load.Latencies), 99), p.changes, p.reloads, p.old, p.oldAfter)
		}
	}
	if err := st.Err(); err != nil {
		return err
	}
	report(res, quiet, churn)
	return nil
}

func onePhase(ctx context.Context, st *stack.Stack, c config, url string, churnPort int, withChurn bool, reloads *atomic.Int64, master int) (phase, error) {
	var p phase
	r0 := reloads.Load()
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var churnErr error
	if withChurn {
		wg.Go(func() {
			tick := time.NewTicker(time.Second / time.Duration(c.rate))
			defer tick.Stop()
			for i := 0; i < int(c.phase.Seconds()+1)*c.rate; i++ {
				select {
				case <-pctx.Done():
					return
				case <-tick.C:
				}
				if err := st.PutApp("churn", churnPort, fmt.Sprintf("  conn_limit: %d\n%s", 1000+i, probed)); err != nil {
					if pctx.Err() == nil {
						churnErr = err
					}
					return
				}
				p.changes++
			}
		})
	}
	p.load = load.Run(pctx, load.Config{URL: url, Workers: c.workers, Duration: c.phase})
	cancel()
	wg.Wait()
	if churnErr != nil {
		return p, churnErr
	}
	if ctx.Err() != nil {
		return p, ctx.Err()
	}
	var err error
	if p.old, err = procs.ShuttingDownWorkers(master); err != nil {
		return p, err
	}
	time.Sleep(time.Second)
	if p.oldAfter, err = procs.ShuttingDownWorkers(master); err != nil {
		return p, err
	}
	p.reloads = reloads.Load() - r0
	// Let the last change settle before the next phase.
	time.Sleep(time.Second)
	return p, nil
}

func report(res *result.File, quiet, churn []phase) {
	var qp99, cp99, qp50, cp50, qfail, cfail, qrps, crps, changes, rel, old, oldAfter []float64
	var qall, call []float64
	for i := range quiet {
		q, c := stats.Durations(quiet[i].load.Latencies), stats.Durations(churn[i].load.Latencies)
		qall, call = append(qall, q...), append(call, c...)
		qp99, cp99 = append(qp99, stats.Percentile(q, 99)), append(cp99, stats.Percentile(c, 99))
		qp50, cp50 = append(qp50, stats.Percentile(q, 50)), append(cp50, stats.Percentile(c, 50))
		qfail, cfail = append(qfail, float64(quiet[i].load.Failed)), append(cfail, float64(churn[i].load.Failed))
		qrps = append(qrps, float64(quiet[i].load.OK)/quiet[i].load.Elapsed.Seconds())
		crps = append(crps, float64(churn[i].load.OK)/churn[i].load.Elapsed.Seconds())
		changes, rel = append(changes, float64(churn[i].changes)), append(rel, float64(churn[i].reloads))
		old, oldAfter = append(old, float64(churn[i].old)), append(oldAfter, float64(churn[i].oldAfter))
		for _, p := range []phase{quiet[i], churn[i]} {
			if p.load.FirstErr != "" {
				res.Note("first failed request: %s", p.load.FirstErr)
			}
		}
	}
	res.Add("churn: failed requests", "count", "0", cfail...)
	res.Add("no churn: failed requests", "count", "0", qfail...)
	res.Add("churn: p99", "ms", "", cp99...)
	res.Add("no churn: p99", "ms", "", qp99...)
	res.Add("churn: p50", "ms", "", cp50...)
	res.Add("no churn: p50", "ms", "", qp50...)
	res.Add("churn: requests/s", "req/s", "", crps...)
	res.Add("no churn: requests/s", "req/s", "", qrps...)
	res.Add("churn: config changes applied through the API", "count", "", changes...)
	res.Add("churn: reloads (configs applied)", "count", "", rel...)
	res.Add("churn: old worker generations shutting down at the end", "count", "", old...)
	res.Add("churn: old worker generations shutting down 1 s after the end", "count", "", oldAfter...)
	res.Ratios = append(res.Ratios,
		result.Ratio{Name: "p99 churn / no churn (same round)", Runs: stats.Ratios(cp99, qp99)},
		result.Ratio{Name: "requests/s churn / no churn (same round)", Runs: stats.Ratios(crps, qrps)})
	res.Samples = append(res.Samples,
		result.Sample{Plot: "churn-latency", Name: "no churn", Unit: "ms", Values: qall},
		result.Sample{Plot: "churn-latency", Name: "churn", Unit: "ms", Values: call})
	res.Note("Reloads are fewer than changes: the renderer gathers the changes of each coalescing window into one config.")
}

// waitServing waits (at most 30 s) until url answers 200 to a short load.
func waitServing(ctx context.Context, url string) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		r := load.Run(ctx, load.Config{URL: url, Workers: 1, Duration: time.Second, MaxRequests: 20})
		if r.Failed == 0 && r.OK > 0 {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		time.Sleep(100 * time.Millisecond)
	}
	return errors.New(url + " not served within 30s")
}
