// Command capacity runs the existing capacity benchmarks and collects
// their figures: the health service's probe capacity
// (services/health/cmd/probebench: probes/s one core sustains, CPU per
// probe, memory per target) and the metrics service's ingestion
// (services/metrics BenchmarkIngest and BenchmarkWindowMemory: access-log
// lines/s on one core, heap of a window), and the render package's
// benchmarks (services/renderer/render). Each is run -runs times; the
// report shows min/median/max over the runs.
//
// It runs from the repository's root (go build and go test on the
// workspace).
//
//	go run ./bench/capacity -mode quick -out bench/results/raw
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/orchestry/orchestry/bench/internal/run"
	"github.com/orchestry/orchestry/bench/result"
)

func main() {
	f := run.Register()
	targets := flag.String("targets", "", "probebench target counts (default: quick 1000, full 1000,5000,10000)")
	duration := flag.Duration("duration", 0, "probebench measured time per size (default: quick 5s, full 15s)")
	runs := flag.Int("runs", 0, "runs of each benchmark (default: quick 1, full 3)")
	flag.Parse()
	quick := f.Quick()
	if *targets == "" {
		*targets = map[bool]string{true: "1000", false: "1000,5000,10000"}[quick]
	}
	if *duration <= 0 {
		*duration = map[bool]time.Duration{true: 5 * time.Second, false: 15 * time.Second}[quick]
	}
	if *runs <= 0 {
		*runs = map[bool]int{true: 1, false: 3}[quick]
	}
	if *runs > 10 || *duration > 5*time.Minute {
		fmt.Fprintln(os.Stderr, "bad flags: runs <= 10, duration <= 5m")
		os.Exit(2)
	}
	run.Main("capacity", func(ctx context.Context, dir string) error {
		res := result.New("capacity", "Health probe capacity and metrics ingestion", f.Mode)
		res.Summary = "The existing capacity benchmarks, collected: targets the health service keeps probed on one core (probebench), access-log lines/s the metrics service ingests on one core, and the render benchmarks."
		res.Param("probebench", fmt.Sprintf("-targets %s -duration %s (health service on one core, 1 s period)", *targets, *duration))
		res.Param("metrics benchmarks", "go test -bench . ./services/metrics/ (one goroutine: lines/s on one core)")
		res.Param("render benchmarks", "go test -bench . -benchtime 5x ./services/renderer/render/")
		res.Param("runs", *runs)
		if err := probes(ctx, dir, res, *targets, *duration, *runs); err != nil {
			return fmt.Errorf("probebench: %w", err)
		}
		if err := gobench(ctx, res, *runs, "./services/metrics/", "metrics "); err != nil {
			return fmt.Errorf("metrics benchmarks: %w", err)
		}
		if err := gobench(ctx, res, *runs, "./services/renderer/render/", "render ", "-benchtime", "5x"); err != nil {
			return fmt.Errorf("render benchmarks: %w", err)
		}
		return res.Write(f.Out)
	})
}

// command runs name with args in its own process group, ended with it on
// ctx's end (Ctrl-C), and returns its standard output.
func command(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGINT) }
	cmd.WaitDelay = 30 * time.Second
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return string(out), nil
}

// probeRow is one row of probebench's table.
var probeRow = regexp.MustCompile(`^\|\s*(\d+)\s*\|\s*([\d.]+)\s*\|\s*([\d.]+)\s*\|\s*([\d.]+)\s*\|\s*([\d.]+)%\s*\|\s*([\d.]+)\s*\|\s*([^|]+)\|\s*([^|]+)\|\s*([^|]+)\|`)

func probes(ctx context.Context, dir string, res *result.File, targets string, d time.Duration, runs int) error {
	bin := filepath.Join(dir, "probebench")
	if _, err := command(ctx, "go", "build", "-o", bin, "./services/health/cmd/probebench"); err != nil {
		return err
	}
	type fig struct{ probes, goal, cpu, perProbe, heap, stack []float64 }
	by := map[string]*fig{}
	var order []string
	for r := range runs {
		out, err := command(ctx, bin, "-targets", targets, "-duration", d.String())
		if err != nil {
			return err
		}
		fmt.Print(out)
		rows := 0
		sc := bufio.NewScanner(strings.NewReader(out))
		for sc.Scan() {
			m := probeRow.FindStringSubmatch(sc.Text())
			if m == nil {
				continue
			}
			rows++
			f := by[m[1]]
			if f == nil {
				f = &fig{}
				by[m[1]] = f
				order = append(order, m[1])
			}
			f.probes = append(f.probes, num(m[2]))
			f.goal = append(f.goal, num(m[3]))
			f.cpu = append(f.cpu, num(m[5]))
			f.perProbe = append(f.perProbe, num(m[6]))
			f.heap = append(f.heap, size(m[7]))
			f.stack = append(f.stack, size(m[8]))
		}
		if rows == 0 {
			return fmt.Errorf("run %d: no result rows in its output", r+1)
		}
	}
	for _, n := range order {
		f := by[n]
		res.Add(n+" targets: probes/s", "probes/s", fmt.Sprintf("≥ %.0f (99 %% of the targets each period)", 0.99*f.goal[0]), f.probes...)
		res.Add(n+" targets: CPU of the health service", "% of a core", "", f.cpu...)
		res.Add(n+" targets: CPU per probe", "µs", "", f.perProbe...)
		res.Add(n+" targets: heap per target", "B", "", f.heap...)
		res.Add(n+" targets: goroutine stack per target", "B", "", f.stack...)
	}
	return nil
}

// benchLine is a `go test -bench` result line: name, iterations, then
// value-unit pairs.
var benchLine = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+\d+\s+(.*)$`)

// gobench runs a package's Go benchmarks runs times and adds every
// reported value as a figure named prefix + benchmark + unit.
func gobench(ctx context.Context, res *result.File, runs int, pkg, prefix string, extra ...string) error {
	args := append([]string{"test", "-run", "^$", "-bench", ".", "-benchmem", "-count", strconv.Itoa(runs)}, extra...)
	out, err := command(ctx, "go", append(args, pkg)...)
	if err != nil {
		return err
	}
	fmt.Print(out)
	type key struct{ name, unit string }
	vals := map[key][]float64{}
	var order []key
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		m := benchLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		f := strings.Fields(m[2])
		for i := 0; i+1 < len(f); i += 2 {
			unit := f[i+1]
			if (unit == "ns/op" || unit == "B/op" || unit == "allocs/op") && m[1] == "BenchmarkWindowMemory" {
				continue // its op is one whole fill of a window
			}
			k := key{prefix + strings.TrimPrefix(m[1], "Benchmark"), unit}
			if _, ok := vals[k]; !ok {
				order = append(order, k)
			}
			vals[k] = append(vals[k], num(f[i]))
		}
	}
	if len(order) == 0 {
		return errors.New("no benchmark results in go test's output")
	}
	for _, k := range order {
		res.Add(k.name+": "+k.unit, k.unit, "", vals[k]...)
	}
	return nil
}

func num(s string) float64 {
	v, _ := strconv.ParseFloat(strings.TrimSpace(s), 64)
	return v
}

// size reads probebench's "1.5 KiB" / "2.0 MiB" / "300 B" as bytes.
func size(s string) float64 {
	f := strings.Fields(s)
	if len(f) != 2 {
		return 0
	}
	mul := map[string]float64{"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}[f[1]]
	return num(f[0]) * mul
}
