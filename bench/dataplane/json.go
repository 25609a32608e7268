package main

// The JSON result for the report generator.

import (
	"fmt"
	"os/exec"
	"strings"
	"time"

	res "github.com/orchestry/orchestry/bench/result"
	"github.com/orchestry/orchestry/bench/stats"
)

// writeJSON writes dataplane.json: per config its requests/s, p99 and CPU
// per request for every round, and the ratios pair by pair per round.
func writeJSON(c config, vs []*variant, bin string, started time.Time) error {
	out := res.New("dataplane", "Data plane: throughput and p99", c.mode)
	out.Started = started.UTC()
	out.Summary = "Requests/s and p99 (wrk) through the config Orchestry renders for one app on four backends, against a hand-written NGINX config and Caddy's reverse_proxy for the same backends, on the same load tool, interleaved round by round; the config under test has a core of its own."
	nv, _ := exec.Command(bin, "-v").CombinedOutput()
	out.Param("NGINX", strings.TrimSpace(strings.TrimPrefix(string(nv), "nginx version: ")))
	out.Param("worker_processes (NGINX) / GOMAXPROCS (Caddy)", c.workers)
	out.Param("backends", fmt.Sprintf("1 NGINX worker, %d ports, body \"ok\\n\"", backendCount))
	out.Param("load", fmt.Sprintf("wrk -t%d -c%d, %d rounds × %s per config after a %s warm-up, order rotating", c.threads, c.conns, c.rounds, c.duration, c.warmup))
	if c.pin {
		out.Param("CPU pinning", fmt.Sprintf("config under test on CPU %s; backends, wrk and this process on CPU %s", c.frontCPUs, c.loadCPUs))
	}
	by := map[string]*variant{}
	for _, v := range vs {
		by[v.key] = v
		var rps, p99, cpu, sock []float64
		for _, r := range v.results {
			rps = append(rps, r.rps)
			p99 = append(p99, float64(r.p99)/float64(time.Millisecond))
			cpu = append(cpu, 1e6*r.cpuPerReq)
			sock = append(sock, float64(r.sockErrs))
		}
		out.Add(v.key+": requests/s", "req/s", "", rps...)
		out.Add(v.key+": p99", "ms", "", p99...)
		out.Add(v.key+": CPU per request of the config under test", "µs", "", cpu...)
		out.Add(v.key+": socket errors", "count", "0", sock...)
		out.Note("%s: %s", v.key, v.title)
	}
	for _, q := range ratios {
		a, b := by[q[0]], by[q[1]]
		if a == nil || b == nil {
			continue
		}
		var ar, br, ap, bp []float64
		for i := range min(len(a.results), len(b.results)) {
			ar, br = append(ar, a.results[i].rps), append(br, b.results[i].rps)
			ap, bp = append(ap, float64(a.results[i].p99)), append(bp, float64(b.results[i].p99))
		}
		goal := ""
		if q[0] == "rendered-syslog" && q[1] == "hand-syslog" {
			goal = "≥ 0.95"
		}
		out.Ratios = append(out.Ratios,
			res.Ratio{Name: fmt.Sprintf("req/s %s / %s (%s)", q[0], q[1], q[2]), Runs: stats.Ratios(ar, br), Goal: goal},
			res.Ratio{Name: fmt.Sprintf("p99 %s / %s (lower is better)", q[0], q[1]), Runs: stats.Ratios(ap, bp)})
	}
	return out.Write(c.out)
}
