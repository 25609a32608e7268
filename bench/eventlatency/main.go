// Command eventlatency measures event-to-serving latency: from an
// instance.registered event, published through pkg/events as an
// orchestrator would, to the new backend's first proxied request.
//
// Orchestry runs in this process (package stack: embedded NATS, routing,
// health, the renderer and its NGINX, deployed defaults). Several apps, each
// with one permanent instance under a steady closed-loop load, run trials
// side by side: a new backend starts, its registration is published, and
// the trial ends when the backend sees its first request through NGINX;
// then it is deregistered and removed from the live config before the next
// trial. Each trial also records when routing published the app's new state
// and when health reported the instance healthy, so the report can say
// which stage dominates.
//
// Modes: "hold" is as deployed (ORCHESTRY_RENDER_UNPROBED=hold: a new
// instance waits for its first successful probe); "serve" sends it traffic
// at once (the render pipeline alone).
//
//	go run ./bench/eventlatency -mode quick -out bench/results/raw
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/orchestry/orchestry/bench/internal/load"
	"github.com/orchestry/orchestry/bench/internal/run"
	"github.com/orchestry/orchestry/bench/internal/stack"
	"github.com/orchestry/orchestry/bench/result"
	"github.com/orchestry/orchestry/bench/stats"
	"github.com/orchestry/orchestry/pkg/events"
)

func main() {
	f := run.Register()
	trials := flag.Int("trials", 0, "trials per mode (default: quick 30, full 100)")
	parallel := flag.Int("parallel", 0, "apps running trials side by side (default: quick 5, full 10)")
	modes := flag.String("modes", "hold,serve", "modes to run: hold (as deployed), serve")
	budget := flag.Duration("budget", 0, "bound on each mode's trials (default: quick 2m, full 6m)")
	flag.Parse()
	quick := f.Quick()
	def := func(v *int, q, full int) {
		if *v <= 0 {
			*v = map[bool]int{true: q, false: full}[quick]
		}
	}
	def(trials, 30, 100)
	def(parallel, 5, 10)
	if *budget <= 0 {
		*budget = map[bool]time.Duration{true: 2 * time.Minute, false: 6 * time.Minute}[quick]
	}
	run.Main("eventlatency", func(ctx context.Context, dir string) error {
		res := result.New("eventlatency", "Event-to-serving latency", f.Mode)
		res.Summary = "From `instance.registered` (published through pkg/events, as an orchestrator would) to the new backend's first request through NGINX, with Orchestry (routing, health, renderer, NGINX) in-process on embedded NATS. Several apps under steady load run trials side by side; `hold` is as deployed (a new instance waits for its first successful probe), `serve` sends it traffic at once (the render pipeline alone)."
		res.Param("trials per mode", *trials)
		res.Param("apps running trials side by side", *parallel)
		for _, m := range strings.Split(*modes, ",") {
			if err := runMode(ctx, res, dir+"/"+m, m, *trials, *parallel, *budget); err != nil {
				return fmt.Errorf("mode %s: %w", m, err)
			}
		}
		return res.Write(f.Out)
	})
}

// trial is one registration's timeline, relative to the publish.
type trial struct {
	serving, routed, healthy time.Duration // -1: not seen
}

// watcher records when routing published a state listing an instance and
// when health reported it healthy.
type watcher struct {
	mu      sync.Mutex
	routed  map[string]time.Time
	healthy map[string]time.Time
	// render, validate and reload are the applied configs' timings (ms).
	render, validate, reload []float64
}

func (w *watcher) onMsg(m *nats.Msg) {
	now := time.Now()
	ev, err := events.Decode(m.Subject, m.Data)
	if err != nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	switch p := ev.Payload.(type) {
	case events.RoutingState:
		for _, in := range p.Instances {
			if _, ok := w.routed[in.ID]; !ok {
				w.routed[in.ID] = now
			}
		}
	case events.RenderReport:
		if p.Outcome == events.OutcomeApplied {
			w.render = append(w.render, p.RenderMS)
			w.validate = append(w.validate, p.ValidateMS)
			w.reload = append(w.reload, p.ReloadMS)
		}
	case events.HealthState:
		if _, ok := w.healthy[p.InstanceID]; !ok && p.State == events.HealthHealthy {
			w.healthy[p.InstanceID] = now
		}
	}
}

func (w *watcher) since(id string, t0 time.Time) (routed, healthy time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	routed, healthy = -1, -1
	if t, ok := w.routed[id]; ok {
		routed = t.Sub(t0)
	}
	if t, ok := w.healthy[id]; ok {
		healthy = t.Sub(t0)
	}
	return routed, healthy
}

func runMode(ctx context.Context, res *result.File, dir, mode string, trials, parallel int, budget time.Duration) error {
	unprobed := ""
	switch mode {
	case "hold":
	case "serve":
		unprobed = "serve"
	default:
		return fmt.Errorf("unknown mode %q", mode)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("%s: %w", dir, err)
	}
	st, err := stack.Start(stack.Options{Dir: dir, Health: true, Unprobed: unprobed, Log: run.Logger()})
	if err != nil {
		return err
	}
	defer st.Close()
	if mode == "hold" {
		res.Param("coalescing window (ORCHESTRY_RENDER_COALESCE)", st.Renderer.Coalesce)
		res.Param("unprobed instances (ORCHESTRY_RENDER_UNPROBED, as deployed)", st.Renderer.Unprobed)
		res.Param("health probe period (no healthCheck in the app: the default)", "10s, first probe at a random phase")
	}
	w := &watcher{routed: map[string]time.Time{}, healthy: map[string]time.Time{}}
	for _, subj := range []string{events.RoutingChangedWildcard, events.InstanceHealthWildcard, events.ConfigRenderedWildcard} {
		sub, err := st.NC.Subscribe(subj, w.onMsg)
		if err != nil {
			return fmt.Errorf("subscribe %s: %w", subj, err)
		}
		defer func() { _ = sub.Unsubscribe() }()
	}

	type app struct {
		name string
		port int
		perm *stack.Backend
	}
	apps := make([]app, parallel)
	for i := range apps {
		a := &apps[i]
		a.name = fmt.Sprintf("ev-%d", i)
		if a.port, err = stack.FreePort(); err != nil {
			return err
		}
		if a.perm, err = stack.StartBackend(a.name + "-perm"); err != nil {
			return err
		}
		defer a.perm.Close()
		if err := st.PutApp(a.name, a.port, ""); err != nil {
			return err
		}
		if err := st.AddInstance(a.name, events.Instance{ID: a.perm.ID, IP: "127.0.0.1", Port: a.perm.Port}); err != nil {
			return err
		}
	}
	// Every app served, then a pause for the last reload's old workers to
	// exit: the failures counted are those of the trials.
	for range 2 {
		for _, a := range apps {
			if err := waitFor(ctx, 30*time.Second, func() bool { return answers(a.port) }); err != nil {
				return fmt.Errorf("%s: never served: %w", a.name, err)
			}
		}
		if err := sleep(ctx, 2*time.Second); err != nil {
			return err
		}
	}
	// Steady load on every app, from before the first trial to the end.
	lctx, stopLoad := context.WithCancel(ctx)
	var lwg sync.WaitGroup
	loads := make([]load.Result, len(apps))
	for i, a := range apps {
		lwg.Go(func() {
			loads[i] = load.Run(lctx, load.Config{URL: fmt.Sprintf("http://127.0.0.1:%d/", a.port), Workers: 2,
				Duration: budget + time.Minute, Interval: 2 * time.Millisecond, Timeout: 2 * time.Second})
		})
	}
	defer func() { stopLoad(); lwg.Wait() }()

	var left atomic.Int64
	left.Store(int64(trials))
	var mu sync.Mutex
	var got []trial
	var errs []error
	tctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	var wg sync.WaitGroup
	for _, a := range apps {
		wg.Go(func() {
			for n := 0; left.Add(-1) >= 0 && tctx.Err() == nil; n++ {
				t, err := oneTrial(tctx, st, w, a.name, fmt.Sprintf("%s-t%d", a.name, n))
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else {
					got = append(got, t)
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	stopLoad()
	lwg.Wait()
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted: %w", ctx.Err())
	}
	if len(errs) > 0 && !errors.Is(errs[0], context.DeadlineExceeded) {
		return errors.Join(errs...)
	}
	if len(got) == 0 {
		return errors.New("no trial completed")
	}
	report(res, mode, got, st.Renderer.Coalesce, loads)
	w.mu.Lock()
	res.Add(mode+": render of each applied config, median", "ms", "", stats.Median(w.render))
	res.Add(mode+": nginx -t of each applied config, median", "ms", "", stats.Median(w.validate))
	res.Add(mode+": reload until live of each applied config, median", "ms", "", stats.Median(w.reload))
	w.mu.Unlock()
	if len(got) < trials {
		res.Note("%s: only %d of %d trials completed within the %s budget.", mode, len(got), trials, budget)
	}
	return nil
}

func oneTrial(ctx context.Context, st *stack.Stack, w *watcher, app, id string) (trial, error) {
	b, err := stack.StartBackend(id)
	if err != nil {
		return trial{}, err
	}
	defer b.Close()
	t0 := time.Now()
	if err := st.Register(ctx, app, events.Instance{ID: id, IP: "127.0.0.1", Port: b.Port}); err != nil {
		return trial{}, err
	}
	if err := waitFor(ctx, 30*time.Second, func() bool { return !b.First().IsZero() }); err != nil {
		return trial{}, fmt.Errorf("%s never served: %w", id, err)
	}
	t := trial{serving: b.First().Sub(t0)}
	t.routed, t.healthy = w.since(id, t0)
	if err := st.Deregister(ctx, app, id); err != nil {
		return trial{}, err
	}
	if err := waitFor(ctx, 30*time.Second, func() bool { return !st.LiveUpstreamHas(app, b.Port) }); err != nil {
		return trial{}, fmt.Errorf("%s never left the live config: %w", id, err)
	}
	return t, nil
}

func report(res *result.File, mode string, ts []trial, coalesce time.Duration, loads []load.Result) {
	var serving, routed, healthy, afterHealthy []float64
	for _, t := range ts {
		serving = append(serving, ms(t.serving))
		if t.routed >= 0 {
			routed = append(routed, ms(t.routed))
		}
		if t.healthy >= 0 {
			healthy = append(healthy, ms(t.healthy))
			if t.healthy < t.serving {
				afterHealthy = append(afterHealthy, ms(t.serving-t.healthy))
			}
		}
	}
	goal := fmt.Sprintf("≤ %s (300 ms + the %s coalescing window)", ms2(300*time.Millisecond+coalesce), coalesce)
	trialsGoal := ""
	if res.Mode == "full" {
		trialsGoal = "≥ 100"
	}
	res.Add(mode+": event to first proxied request, p50", "ms", "", stats.Percentile(serving, 50))
	res.Add(mode+": event to first proxied request, p99", "ms", goal, stats.Percentile(serving, 99))
	res.Add(mode+": trials", "count", trialsGoal, float64(len(ts)))
	res.Add(mode+": event to routing.changed, p50", "ms", "", stats.Percentile(routed, 50))
	if mode == "hold" {
		res.Add(mode+": event to health's first healthy report, p50", "ms", "", stats.Percentile(healthy, 50))
		res.Add(mode+": healthy report to first proxied request, p50", "ms", "", stats.Percentile(afterHealthy, 50))
		res.Add(mode+": healthy report to first proxied request, p99", "ms", "", stats.Percentile(afterHealthy, 99))
	}
	var failed int64
	for _, l := range loads {
		failed += l.Failed
	}
	res.Add(mode+": failed requests of the background load", "count", "0", float64(failed))
	for i, l := range loads {
		if l.FirstErr != "" {
			last := l.FailedAt[len(l.FailedAt)-1]
			res.Note("%s: app ev-%d: %d failed requests of the background load, from %s to %s after the load started; the first: %s",
				mode, i, l.Failed, l.FirstErrAt.Sub(l.Started).Round(time.Millisecond), last.Sub(l.Started).Round(time.Millisecond), l.FirstErr)
		}
	}
	res.Samples = append(res.Samples, result.Sample{Plot: "event-to-serving", Name: mode, Unit: "ms", Values: serving})
	if mode == "hold" && len(afterHealthy) > 0 {
		res.Samples = append(res.Samples, result.Sample{Plot: "event-to-serving", Name: "hold, from the healthy report", Unit: "ms", Values: afterHealthy})
		res.Note("hold (as deployed): the wait for the first probe dominates (p50 %.0f ms of %.0f ms); the probe of a new target comes at a random phase of its period (10 s without a healthCheck), then the render pipeline adds p50 %.0f ms.",
			stats.Percentile(healthy, 50), stats.Percentile(serving, 50), stats.Percentile(afterHealthy, 50))
	}
	if mode == "serve" {
		res.Note("serve: the render pipeline alone: routing, the %s coalescing window (which dominates), render, nginx -t, reload until live, NGINX's first request to the backend; the applied configs' own timings are in the figures.", coalesce)
	}
}

var answerClient = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

func waitFor(ctx context.Context, d time.Duration, cond func() bool) error {
	deadline := time.Now().Add(d)
	for !cond() {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %s", d)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func ms2(d time.Duration) string { return fmt.Sprintf("%.0f ms", ms(d)) }

// answers reports whether the app on port answers 200 (on a new
// connection, closed afterwards).
func answers(port int) bool {
	resp, err := answerClient.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
