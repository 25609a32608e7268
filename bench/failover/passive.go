package main

// The plain NGINX of the nginx-passive mode, and the report.

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"text/template"
	"time"

	"github.com/orchestry/orchestry/bench/internal/run"
	"github.com/orchestry/orchestry/bench/result"
	"github.com/orchestry/orchestry/bench/stats"
	"github.com/orchestry/orchestry/services/renderer/nginx"
)

//go:embed passive.conf
var passiveConf string

// startPassive writes passive.conf for the apps under dir, tests it and
// starts NGINX on it; stop stops it.
func startPassive(ctx context.Context, dir string, apps []*app) (stop func(), err error) {
	bin, err := nginx.Binary("")
	if err != nil {
		return nil, fmt.Errorf("nginx: %w", err)
	}
	prefix := filepath.Join(dir, "nginx")
	for _, d := range []string{"logs", "temp", "conf"} {
		if err := os.MkdirAll(filepath.Join(prefix, d), 0o755); err != nil {
			return nil, fmt.Errorf("nginx prefix: %w", err)
		}
	}
	t, err := template.New("conf").Option("missingkey=error").Parse(passiveConf)
	if err != nil {
		return nil, fmt.Errorf("passive.conf: %w", err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, map[string]any{"Prefix": prefix, "Apps": apps}); err != nil {
		return nil, fmt.Errorf("passive.conf: %w", err)
	}
	conf := filepath.Join(prefix, "conf", "nginx.conf")
	if err := os.WriteFile(conf, b.Bytes(), 0o644); err != nil {
		return nil, fmt.Errorf("passive.conf: %w", err)
	}
	sup := nginx.NewSupervisor(bin, prefix, conf, run.Logger())
	if err := sup.Test(ctx, conf); err != nil {
		return nil, err
	}
	if err := sup.Start(); err != nil {
		return nil, err
	}
	return func() { _ = sup.Stop(10 * time.Second) }, nil
}

// heldPorts returns n distinct loopback ports that were free a moment ago.
func heldPorts(n int) ([]int, error) {
	var out []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("free port: %w", err)
		}
		defer ln.Close()
		out = append(out, ln.Addr().(*net.TCPAddr).Port)
	}
	return out, nil
}

func report(res *result.File, modes []string, out map[string][]outcome, c config) {
	p99 := map[string][]float64{}
	for _, m := range modes {
		var p50s, hits, failed, late, rem50, rem99, slow []float64
		var pooled []float64
		for _, o := range out[m] {
			l := o.lasts()
			pooled = append(pooled, l...)
			p50s = append(p50s, stats.Percentile(l, 50))
			p99[m] = append(p99[m], stats.Percentile(l, 99))
			h := 0
			for _, n := range o.hits {
				h += n
			}
			hits = append(hits, float64(h)/float64(len(o.hits)))
			failed = append(failed, float64(o.failed))
			n := 0
			for _, d := range o.last {
				if d > failTTL {
					n++
				}
			}
			late = append(late, float64(n))
			var removed []time.Duration
			for _, d := range o.removed {
				if d >= 0 {
					removed = append(removed, d)
				}
			}
			if m == "orchestry" && len(removed) > 0 {
				rem50 = append(rem50, stats.Percentile(stats.Durations(removed), 50))
				rem99 = append(rem99, stats.Percentile(stats.Durations(removed), 99))
			}
			slow = append(slow, float64(o.slowest)/float64(time.Millisecond))
			if o.firstEr != "" {
				res.Note("%s: first failed client request: %s", m, o.firstEr)
			}
		}
		res.Add(m+": death to last request to the dead instance, p50", "ms", "", p50s...)
		res.Add(m+": death to last request to the dead instance, p99", "ms", "", p99[m]...)
		res.Add(m+": requests to the dead instance per trial (mean)", "count", "", hits...)
		res.Add(m+": trials still sent a request after fail_timeout (10 s)", "count", "", late...)
		res.Add(m+": failed client requests", "count", "0", failed...)
		if len(rem50) > 0 {
			res.Add(m+": death to the live config without the instance, p50", "ms", "", rem50...)
			res.Add(m+": death to the live config without the instance, p99", "ms", "", rem99...)
		}
		res.Add(m+": slowest client request", "ms", "", slow...)
		res.Samples = append(res.Samples, result.Sample{Plot: "failure-convergence", Name: m, Unit: "ms", Values: pooled})
		res.Series = append(res.Series, timeline(m, out[m], c))
	}
	res.Ratios = append(res.Ratios, result.Ratio{Name: "convergence p99, orchestry / nginx-passive (lower is better)",
		Runs: stats.Ratios(p99["orchestry"], p99["nginx-passive"])})
	res.Note("Each of the %d apps is one trial; a mode's trials share one NGINX and are not independent (a reload resets NGINX's passive failure counts).", c.apps)
}

// timelineBin is the width of the timeline's bins.
const timelineBin = 250 * time.Millisecond

// timeline is the convergence over time: the requests the dead instances
// got in each bin after their death, per trial (mean over the rounds).
func timeline(mode string, os []outcome, c config) result.Series {
	n := int(c.window/timelineBin) + 1
	s := result.Series{Plot: "failover-timeline", Name: mode, XLabel: "time since the death (s)",
		YLabel: fmt.Sprintf("requests to the dead instance per trial, per %s", timelineBin), X: make([]float64, n), Y: make([]float64, n)}
	for i := range n {
		s.X[i] = (time.Duration(i) * timelineBin).Seconds()
	}
	for _, o := range os {
		for _, d := range o.seen {
			s.Y[min(int(d/timelineBin), n-1)] += 1 / float64(len(o.last)*len(os))
		}
	}
	return s
}
