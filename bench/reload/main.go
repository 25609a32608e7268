// Command reload measures what a config change costs on a real NGINX at
// several sizes: render, `nginx -t`, and reload until the new version
// answers (SIGHUP, then the renderer's live confirmation: the status server
// answers with the new version), and NGINX's memory (resident set of the
// master and its workers, from /proc) after the reload, once the old
// workers have exited. Each size gets N apps × 10 instances as name-based
// virtual hosts on one port; every round changes one instance.
//
//	go run ./bench/reload -mode quick -out bench/results/raw
//	go run ./bench/reload -sizes 100,1000,10000 -rounds 5
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/orchestry/orchestry/bench/internal/procs"
	"github.com/orchestry/orchestry/bench/internal/run"
	"github.com/orchestry/orchestry/bench/result"
	"github.com/orchestry/orchestry/bench/stats"
	"github.com/orchestry/orchestry/pkg/events"
	"github.com/orchestry/orchestry/services/renderer/apply"
	"github.com/orchestry/orchestry/services/renderer/nginx"
	"github.com/orchestry/orchestry/services/renderer/render"
)

func main() {
	f := run.Register()
	sizes := flag.String("sizes", "", "comma-separated app counts (default: quick 100,1000; full 100,1000,10000)")
	rounds := flag.Int("rounds", 0, "changes measured per size (default: quick 3, full 5)")
	flag.Parse()
	quick := f.Quick()
	if *sizes == "" {
		*sizes = map[bool]string{true: "100,1000", false: "100,1000,10000"}[quick]
	}
	if *rounds <= 0 {
		*rounds = map[bool]int{true: 3, false: 5}[quick]
	}
	var ns []int
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > 50000 {
			fmt.Fprintf(os.Stderr, "bad size %q (1 to 50000)\n", s)
			os.Exit(2)
		}
		ns = append(ns, n)
	}
	run.Main("reload", func(ctx context.Context, dir string) error {
		bin, err := nginx.Binary("")
		if err != nil {
			return fmt.Errorf("nginx: %w", err)
		}
		res := result.New("reload", "Render and apply at scale", f.Mode)
		res.Summary = "N apps × 10 instances as name-based virtual hosts on one port, one instance changed per round: render, `nginx -t`, reload until the new version answers, and NGINX's memory once the old workers have exited."
		res.Param("instances per app", 10)
		res.Param("rounds (changes) per size", *rounds)
		res.Param("NGINX worker_processes", 1)
		fmt.Printf("%-8s %-10s %12s %12s %12s %12s %10s\n", "apps", "instances", "render", "nginx -t", "reload+live", "total", "RSS")
		series := map[string]*result.Series{}
		for _, name := range []string{"render", "nginx -t", "reload until live", "total"} {
			series[name] = &result.Series{Plot: "reload-by-size", Name: name, XLabel: "apps (× 10 instances)", YLabel: "median time (ms)"}
		}
		for _, n := range ns {
			m, err := measure(ctx, dir, bin, n, *rounds)
			if err != nil {
				return fmt.Errorf("apps=%d: %w", n, err)
			}
			fmt.Printf("%-8d %-10d %12s %12s %12s %12s %8.1fMiB\n", n, n*10, med(m.render), med(m.validate), med(m.reload), med(m.total), stats.Median(m.rss))
			res.Add(fmt.Sprintf("%d apps: render", n), "ms", "", m.render...)
			res.Add(fmt.Sprintf("%d apps: nginx -t", n), "ms", "", m.validate...)
			res.Add(fmt.Sprintf("%d apps: reload until live (SIGHUP + confirmation)", n), "ms", "", m.reload...)
			res.Add(fmt.Sprintf("%d apps: total", n), "ms", "", m.total...)
			res.Add(fmt.Sprintf("%d apps: NGINX RSS after reload (master + workers)", n), "MiB", "", m.rss...)
			res.Add(fmt.Sprintf("%d apps: NGINX PSS after reload (master + workers, shared pages counted once)", n), "MiB", "", m.pss...)
			for name, xs := range map[string][]float64{"render": m.render, "nginx -t": m.validate, "reload until live": m.reload, "total": m.total} {
				series[name].X = append(series[name].X, float64(n))
				series[name].Y = append(series[name].Y, stats.Median(xs))
			}
		}
		for _, name := range []string{"render", "nginx -t", "reload until live", "total"} {
			res.Series = append(res.Series, *series[name])
		}
		res.Note("RSS sums the resident memory of the master and its workers, so the pages a worker shares with the master after fork count twice; PSS counts them once.")
		res.Note("reload until live: from SIGHUP until the status server answers with the new version (the renderer's live confirmation), as the renderer times it.")
		return res.Write(f.Out)
	})
}

// measurement holds one value per round, in ms (rss in MiB).
type measurement struct {
	render, validate, reload, total, rss, pss []float64
}

func measure(ctx context.Context, root, bin string, n, rounds int) (measurement, error) {
	var m measurement
	dir, err := os.MkdirTemp(root, "reload")
	if err != nil {
		return m, fmt.Errorf("temp dir: %w", err)
	}
	defer os.RemoveAll(dir)
	status, err := freeAddr()
	if err != nil {
		return m, err
	}
	port, err := freeAddr()
	if err != nil {
		return m, err
	}
	_, p, _ := net.SplitHostPort(port)
	appPort, _ := strconv.Atoi(p)
	prefix := filepath.Join(dir, "nginx")
	sup := nginx.NewSupervisor(bin, prefix, apply.LiveConf(prefix), zerolog.Nop())
	defer func() { _ = sup.Stop(30 * time.Second) }()
	a, err := apply.New(render.Options{Prefix: prefix, StatusListen: status, CertDir: filepath.Join(dir, "certs"), WorkerProcesses: 1, ListenIP: "127.0.0.1"},
		sup, 5*time.Minute, zerolog.Nop())
	if err != nil {
		return m, fmt.Errorf("applier: %w", err)
	}
	apps := make([]events.RoutingState, n)
	for i := range apps {
		apps[i] = app(i, appPort)
	}
	if r := a.Apply(ctx, apps, apply.Certs{}); r.Err != nil {
		return m, fmt.Errorf("first apply: %w", r.Err)
	}
	for round := range rounds {
		apps[round%n].Instances[0].Port = 20000 + round
		r := a.Apply(ctx, apps, apply.Certs{})
		if r.Err != nil || r.Outcome != events.OutcomeApplied {
			return m, fmt.Errorf("round %d: %s %v", round, r.Outcome, r.Err)
		}
		m.render = append(m.render, ms(r.Render))
		m.validate = append(m.validate, ms(r.Validate))
		m.reload = append(m.reload, ms(r.Reload))
		m.total = append(m.total, ms(r.Render+r.Validate+r.Reload))
		rss, err := settledRSS(ctx, sup.Pid())
		if err != nil {
			return m, fmt.Errorf("round %d: %w", round, err)
		}
		m.rss = append(m.rss, float64(rss)/(1<<20))
		pss, err := procs.PSS(sup.Pid())
		if err != nil {
			return m, fmt.Errorf("round %d: %w", round, err)
		}
		m.pss = append(m.pss, float64(pss)/(1<<20))
	}
	return m, nil
}

// settledRSS waits (at most 30 s) until no old worker is shutting down,
// then reads the resident memory of the master and its workers.
func settledRSS(ctx context.Context, master int) (int64, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		n, err := procs.ShuttingDownWorkers(master)
		if err != nil {
			return 0, err
		}
		if n == 0 || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return procs.RSS(master)
}

func app(i, port int) events.RoutingState {
	name := fmt.Sprintf("app-%05d", i)
	s := events.RoutingState{
		App: events.App{
			Metadata: events.Metadata{Name: name},
			Spec:     events.AppSpec{Networking: events.Networking{ExternalPort: port, Domain: name + ".bench.test"}},
		},
		Revision: 1,
	}
	for j := range 10 {
		s.Instances = append(s.Instances, events.Instance{
			ID: fmt.Sprintf("i%d", j), IP: fmt.Sprintf("10.%d.%d.%d", i/65536%256, i/256%256, i%256), Port: 8000 + j,
		})
	}
	return s
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func med(xs []float64) string { return fmt.Sprintf("%.1fms", stats.Median(xs)) }
