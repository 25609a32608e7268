package main

// The printed report: header, per-config medians and ratios.

import (
	_ "embed"
	"fmt"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"
)

func header(c config, bin, wrkBin string, n int) {
	nv, _ := exec.Command(bin, "-v").CombinedOutput()
	wv, _ := exec.Command(wrkBin, "-v").CombinedOutput()
	wl, _, _ := strings.Cut(string(wv), "\n")
	wl, _, _ = strings.Cut(wl, " Copyright")
	fmt.Printf("NGINX under test: %s, worker_processes %d; backends: 1 NGINX worker, %d ports, body \"ok\\n\"\n",
		strings.TrimSpace(strings.TrimPrefix(string(nv), "nginx version: ")), c.workers, backendCount)
	fmt.Printf("load: %s, -t%d -c%d, %d rounds x %s per config (after a %s warm-up), order rotating each round\n",
		strings.TrimSpace(wl), c.threads, c.conns, c.rounds, c.duration, c.warmup)
	if c.pin {
		fmt.Printf("CPUs: %d; NGINX under test pinned to CPU %s; backends, wrk and the log sink to CPU %s\n", runtime.NumCPU(), c.frontCPUs, c.loadCPUs)
	} else {
		fmt.Printf("CPUs: %d; nothing pinned\n", runtime.NumCPU())
	}
	total := time.Duration(n) * (c.warmup + time.Duration(c.rounds)*c.duration)
	fmt.Printf("about %s of load\n\n", total.Round(time.Second))
}

func report(vs []*variant, maxOther float64) {
	fmt.Println()
	fmt.Println("| config | req/s | p99 | CPU of the NGINX under test | its CPU per request | upstream connections per 1k requests | log lines per request | |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|---|")
	by := map[string]*variant{}
	for _, v := range vs {
		by[v.key] = v
		med := func(f func(result) float64) float64 { return median(v.results, f) }
		lines := "-"
		if v.log == logSyslog {
			lines = fmt.Sprintf("%.2f", med(func(r result) float64 { return float64(r.logLines) / float64(max(r.requests, 1)) }))
		}
		fmt.Printf("| %s | %.0f | %s | %.0f%% | %.1fµs | %.1f | %s | %s |\n", v.key,
			med(func(r result) float64 { return r.rps }),
			fmtDur(time.Duration(med(func(r result) float64 { return float64(r.p99) }))),
			100*med(func(r result) float64 { return r.frontCPU }),
			1e6*med(func(r result) float64 { return r.cpuPerReq }),
			med(perK), lines, v.title)
	}
	fmt.Println()
	fmt.Println("Medians over the rounds. CPU: worker time of the NGINX under test over the run, in % of one core.")
	fmt.Println()
	fmt.Println("| ratio | req/s | range | req/s, quiet rounds only | CPU per request | |")
	fmt.Println("|---|---:|---|---:|---:|---|")
	for _, q := range ratios {
		a, b := by[q[0]], by[q[1]]
		if a == nil || b == nil {
			continue
		}
		rps := make([]float64, len(a.results))
		cpu := make([]float64, len(a.results))
		var quiet []float64
		for i := range rps {
			rps[i] = a.results[i].rps / b.results[i].rps
			cpu[i] = a.results[i].cpuPerReq / b.results[i].cpuPerReq
			if max(a.results[i].otherCPU+a.results[i].steal, b.results[i].otherCPU+b.results[i].steal) <= maxOther {
				quiet = append(quiet, rps[i])
			}
		}
		q4 := "none"
		if len(quiet) > 0 {
			q4 = fmt.Sprintf("%.3f (%d of %d)", medianOf(quiet), len(quiet), len(rps))
		}
		fmt.Printf("| %s / %s | %.3f | %.3f–%.3f | %s | %.3f | %s |\n", q[0], q[1], medianOf(rps), slices.Min(rps), slices.Max(rps), q4, medianOf(cpu), q[2])
	}
	fmt.Println()
	fmt.Println("Ratios: median of the per-round ratios (both sides measured in the same round); quiet rounds: both")
	fmt.Println("runs had other processes below -max-other. CPU per request: of the NGINX under test, median ratio.")
	var other []float64
	for _, v := range vs {
		for _, r := range v.results {
			other = append(other, r.otherCPU+r.steal)
		}
	}
	fmt.Printf("CPU taken by processes outside the benchmark (and the hypervisor) during the runs: median %.0f%%, max %.0f%% of one core.\n",
		100*medianOf(other), 100*slices.Max(other))
	if slices.Max(other) > maxOther {
		fmt.Println("WARNING: the machine was not quiet; the figures are noisier than they should be. Run again on an idle machine.")
	}
}

// perK is the upstream connections opened per 1,000 requests.
func perK(r result) float64 { return 1000 * float64(r.upConns) / float64(max(r.requests, 1)) }

func median(rs []result, f func(result) float64) float64 {
	xs := make([]float64, len(rs))
	for i, r := range rs {
		xs[i] = f(r)
	}
	return medianOf(xs)
}

func medianOf(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func fmtDur(d time.Duration) string {
	if d < time.Millisecond {
		return fmt.Sprintf("%dµs", d.Microseconds())
	}
	return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
}
