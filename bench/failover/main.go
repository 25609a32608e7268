// Command failover measures failure convergence: apps of three instances
// each under a steady request load; one instance per app dies at once (its
// connections are reset once a request is read, so every request it still
// gets is recorded), and for -window the benchmark watches what it is sent.
// A trial's convergence is the time from the death to the last request the
// dead instance received (zero if none); every app is one trial.
//
// Modes, in the same run, on the same kind of backends and load:
//   - orchestry: Orchestry in this process (routing, health, renderer, as
//     deployed; the apps probed every second, out after two failures), its
//     rendered config's passive checks and retries included;
//   - nginx-passive: plain NGINX with a hand-written config (passive.conf:
//     max_fails=3 fail_timeout=10s, NGINX's default retry on error).
//
// The trials of a mode share one NGINX, so they are not independent: a
// reload (health removing any app's dead instance) starts workers whose
// passive failure counts are zero, and every dead instance still listed
// gets up to max_fails requests again.
//
// It also counts the client requests that failed (the goal is none: a
// request sent to the dead instance is retried on another).
//
//	go run ./bench/failover -mode quick -out bench/results/raw
package main

import (
	"context"
	_ "embed"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/orchestry/orchestry/bench/internal/load"
	"github.com/orchestry/orchestry/bench/internal/run"
	"github.com/orchestry/orchestry/bench/internal/stack"
	"github.com/orchestry/orchestry/bench/result"
	"github.com/orchestry/orchestry/bench/stats"
	"github.com/orchestry/orchestry/pkg/events"
)

// The experiment's fixed settings.
const (
	every   = 10 * time.Millisecond // request interval per app
	warmup  = time.Second           // load before the death
	poll    = 20 * time.Millisecond // live-config polling interval
	failTTL = 10 * time.Second      // fail_timeout, rendered and hand-written
)

// healthCheck is the apps' check in the orchestry mode.
const healthCheck = `healthCheck:
  protocol: HTTP
  path: /healthz
  periodSeconds: 1
  timeoutSeconds: 1
  failureThreshold: 2
  successThreshold: 2
`

type config struct {
	apps, rounds int
	window       time.Duration
}

func main() {
	f := run.Register()
	var c config
	flag.IntVar(&c.apps, "apps", 20, "apps (trials) per round and mode, run side by side")
	flag.IntVar(&c.rounds, "rounds", 0, "rounds per mode, interleaved (default: quick 1, full 3)")
	flag.DurationVar(&c.window, "window", 0, "observation after the death (default: quick 12s, full 15s; longer than fail_timeout)")
	flag.Parse()
	quick := f.Quick()
	if c.rounds <= 0 {
		c.rounds = map[bool]int{true: 1, false: 3}[quick]
	}
	if c.window <= 0 {
		c.window = map[bool]time.Duration{true: 12 * time.Second, false: 15 * time.Second}[quick]
	}
	if c.apps < 1 || c.apps > 200 || c.rounds > 20 || c.window > 2*time.Minute {
		fmt.Fprintln(os.Stderr, "bad flags: 1 <= apps <= 200, rounds <= 20, window <= 2m")
		os.Exit(2)
	}
	run.Main("failover", func(ctx context.Context, dir string) error {
		res := result.New("failover", "Failure convergence", f.Mode)
		res.Summary = "Under steady load, one instance of each app dies (connections reset once a request is read): time from the death to the last request it receives, and failed client requests; Orchestry as deployed (health checks, rendered passive checks and retries) against plain NGINX with a hand-written config and passive max_fails only, same backends and load."
		res.Param("trials (apps) per round and mode", c.apps)
		res.Param("rounds", c.rounds)
		res.Param("load", fmt.Sprintf("one request every %s per app, one connection each", every))
		res.Param("observed after the death", c.window)
		res.Param("orchestry health check", "HTTP /healthz every 1 s, out after 2 failures")
		res.Param("nginx-passive", "max_fails=3 fail_timeout=10s, proxy_next_upstream error timeout")
		modes := []string{"orchestry", "nginx-passive"}
		out := map[string][]outcome{}
		for r := range c.rounds {
			for i := range modes {
				m := modes[(i+r)%len(modes)]
				o, err := runMode(ctx, filepath.Join(dir, fmt.Sprintf("%s-%d", m, r)), m, c)
				if err != nil {
					return fmt.Errorf("%s round %d: %w", m, r+1, err)
				}
				fmt.Printf("round %d %-14s convergence p50 %6.0f ms  p99 %6.0f ms  failed requests %d of %d\n",
					r+1, m, stats.Percentile(o.lasts(), 50), stats.Percentile(o.lasts(), 99), o.failed, o.ok+o.failed)
				out[m] = append(out[m], o)
			}
		}
		report(res, modes, out, c)
		return res.Write(f.Out)
	})
}

// outcome is one mode's round.
type outcome struct {
	// seen are the times, since its death, of every request a dead
	// instance got within the window, all trials together.
	seen    []time.Duration
	last    []time.Duration // per trial: death to the last request the dead instance got
	hits    []int           // per trial: requests it got after the death
	removed []time.Duration // per trial: death to the live config no longer listing it; -1 never
	ok      int64
	failed  int64
	firstEr string
	slowest time.Duration
}

func (o outcome) lasts() []float64 { return stats.Durations(o.last) }

type app struct {
	Name     string
	Port     int
	Backends []string
	bks      []*stack.Backend
}

func runMode(ctx context.Context, dir, mode string, c config) (outcome, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return outcome{}, fmt.Errorf("%s: %w", dir, err)
	}
	apps := make([]*app, c.apps)
	for i := range apps {
		a := &app{Name: fmt.Sprintf("conv-%d", i)}
		for j := range 3 {
			b, err := stack.StartBackend(fmt.Sprintf("conv-%d-%d", i, j))
			if err != nil {
				return outcome{}, err
			}
			defer b.Close()
			a.bks = append(a.bks, b)
			a.Backends = append(a.Backends, b.Addr())
		}
		apps[i] = a
	}
	ports, err := heldPorts(len(apps))
	if err != nil {
		return outcome{}, err
	}
	for i, a := range apps {
		a.Port = ports[i]
	}
	live := func(*app) bool { return true }
	switch mode {
	case "orchestry":
		st, err := stack.Start(stack.Options{Dir: dir, Health: true, Log: run.Logger()})
		if err != nil {
			return outcome{}, err
		}
		defer st.Close()
		for _, a := range apps {
			if err := st.PutApp(a.Name, a.Port, healthCheck); err != nil {
				return outcome{}, err
			}
			for _, b := range a.bks {
				if err := st.AddInstance(a.Name, events.Instance{ID: b.ID, IP: "127.0.0.1", Port: b.Port}); err != nil {
					return outcome{}, err
				}
			}
		}
		live = func(a *app) bool { return st.LiveUpstreamHas(a.Name, a.bks[1].Port) }
	case "nginx-passive":
		stop, err := startPassive(ctx, dir, apps)
		if err != nil {
			return outcome{}, err
		}
		defer stop()
	default:
		return outcome{}, fmt.Errorf("unknown mode %q", mode)
	}
	for _, a := range apps {
		if err := waitAllServe(ctx, a); err != nil {
			return outcome{}, err
		}
	}
	return experiment(ctx, apps, c.window, live)
}

// experiment runs the load, kills every app's second backend, and watches.
func experiment(ctx context.Context, apps []*app, window time.Duration, live func(*app) bool) (outcome, error) {
	lctx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	loads := make([]load.Result, len(apps))
	var wg sync.WaitGroup
	for i, a := range apps {
		wg.Go(func() {
			loads[i] = load.Run(lctx, load.Config{URL: fmt.Sprintf("http://127.0.0.1:%d/", a.Port), Workers: 1,
				Interval: every, Duration: warmup + window + 10*time.Second, MaxRequests: int(time.Minute / every)})
		})
	}
	halt := sync.OnceFunc(func() { stopLoad(); wg.Wait() })
	defer halt()
	if err := sleep(ctx, warmup); err != nil {
		return outcome{}, err
	}
	for _, a := range apps {
		if a.bks[1].Served() == 0 {
			return outcome{}, fmt.Errorf("%s: instance %s got no traffic before its death", a.Name, a.bks[1].ID)
		}
	}
	deaths := make([]time.Time, len(apps))
	for i, a := range apps {
		deaths[i] = time.Now()
		a.bks[1].Die()
	}
	o := outcome{removed: make([]time.Duration, len(apps))}
	for i := range o.removed {
		o.removed[i] = -1
	}
	end := deaths[len(deaths)-1].Add(window)
	for now := time.Now(); now.Before(end); now = time.Now() {
		for i, a := range apps {
			if o.removed[i] < 0 && !live(a) {
				o.removed[i] = time.Since(deaths[i])
			}
		}
		if err := sleep(ctx, min(poll, time.Until(end))); err != nil {
			return outcome{}, err
		}
	}
	halt()
	for i, a := range apps {
		var last time.Duration
		hits := 0
		for _, at := range a.bks[1].SeenDead() {
			if d := at.Sub(deaths[i]); d <= window {
				o.seen = append(o.seen, d)
				hits++
				last = max(last, d)
			}
		}
		o.last, o.hits = append(o.last, last), append(o.hits, hits)
		l := loads[i]
		o.ok += l.OK
		o.failed += l.Failed
		if o.firstEr == "" {
			o.firstEr = l.FirstErr
		}
		for _, d := range l.Latencies {
			o.slowest = max(o.slowest, d)
		}
	}
	if o.ok < int64(len(apps))*int64(window/every)/4 {
		return o, fmt.Errorf("only %d requests answered (%d failed); the load did not run", o.ok, o.failed)
	}
	return o, nil
}

// waitAllServe waits (at most 30 s) until requests to the app reach all
// three backends.
func waitAllServe(ctx context.Context, a *app) error {
	url := fmt.Sprintf("http://127.0.0.1:%d/", a.Port)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		load.Run(ctx, load.Config{URL: url, Workers: 1, Duration: time.Second, MaxRequests: 12})
		all := true
		for _, b := range a.bks {
			all = all && b.Served() > 0
		}
		if all {
			return nil
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
	return fmt.Errorf("%s: not served by all three backends within 30s", a.Name)
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
