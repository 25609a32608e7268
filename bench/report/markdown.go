package main

// The report's text: environment, and one section per scenario.

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"

	"github.com/orchestry/orchestry/bench/result"
	"github.com/orchestry/orchestry/bench/stats"
)

// writeEnv writes the machine and the versions.
func writeEnv(b *strings.Builder, caddy string) {
	b.WriteString("## Machine and versions\n\n| | |\n|---|---|\n")
	row := func(k, v string) { fmt.Fprintf(b, "| %s | %s |\n", k, cell(v)) }
	row("CPU", cpuModel())
	row("cores", strconv.Itoa(runtime.NumCPU()))
	row("memory", memTotal())
	row("kernel", firstLine(readFile("/proc/sys/kernel/osrelease")))
	row("Go", firstLine(output("go", "version")))
	row("nginx", strings.TrimPrefix(firstLine(output("nginx", "-v")), "nginx version: "))
	row("nats-server (embedded, Go module)", firstLine(output("go", "list", "-m", "-f", "{{.Version}}", "github.com/nats-io/nats-server/v2")))
	cv := firstLine(output(caddy, "version"))
	if cv == "" {
		cv = "not built (" + caddy + ")"
	}
	row("Caddy", cv)
	rev := firstLine(output("git", "rev-parse", "--short=12", "HEAD"))
	if s := output("git", "status", "--porcelain", "--untracked-files=no"); strings.TrimSpace(s) != "" {
		rev += " (with uncommitted changes)"
	}
	row("git revision", rev)
	row("wrk", strings.SplitN(firstLine(output("wrk", "-v")), " Copyright", 2)[0])
	b.WriteString("\n")
}

// writeScenario writes one scenario's section.
func writeScenario(b *strings.Builder, f result.File, plots []string) {
	fmt.Fprintf(b, "## %s\n\n", f.Title)
	if f.Summary != "" {
		fmt.Fprintf(b, "%s\n\n", f.Summary)
	}
	fmt.Fprintf(b, "`bench/%s`, %s mode, took %s.\n\n", f.Scenario, f.Mode, f.Finished.Sub(f.Started).Round(1e9))
	if len(f.Params) > 0 {
		b.WriteString("| setting | value |\n|---|---|\n")
		for _, p := range f.Params {
			fmt.Fprintf(b, "| %s | %s |\n", cell(p.Name), cell(p.Value))
		}
		b.WriteString("\n")
	}
	if len(f.Figures) > 0 {
		b.WriteString("| figure | unit | min | median | max | runs | goal |\n|---|---|---:|---:|---:|---:|---|\n")
		for _, g := range f.Figures {
			s := stats.Summarize(g.Runs)
			fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %d | %s |\n", cell(g.Name), cell(g.Unit), num(s.Min, s.N), num(s.Median, s.N), num(s.Max, s.N), s.N, cell(g.Goal))
		}
		b.WriteString("\n")
	}
	if len(f.Ratios) > 0 {
		b.WriteString("| ratio (pair by pair, same run) | min | median | max | pairs | goal |\n|---|---:|---:|---:|---:|---|\n")
		for _, r := range f.Ratios {
			s := stats.Summarize(r.Runs)
			fmt.Fprintf(b, "| %s | %s | %s | %s | %d | %s |\n", cell(r.Name), ratio(s.Min, s.N), ratio(s.Median, s.N), ratio(s.Max, s.N), s.N, cell(r.Goal))
		}
		b.WriteString("\n")
	}
	for _, n := range f.Notes {
		fmt.Fprintf(b, "- %s\n", n)
	}
	if len(f.Notes) > 0 {
		b.WriteString("\n")
	}
	for _, p := range plots {
		fmt.Fprintf(b, "![%s](%s)\n\n", strings.TrimSuffix(p[strings.LastIndex(p, "/")+1:], ".png"), p)
	}
}

// num formats a figure with a precision that suits its size.
func num(v float64, n int) string {
	if n == 0 || math.IsNaN(v) {
		return "–"
	}
	a := math.Abs(v)
	switch {
	case a == math.Trunc(a) && a < 1e15:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}

func ratio(v float64, n int) string {
	if n == 0 {
		return "–"
	}
	return strconv.FormatFloat(v, 'f', 3, 64)
}

// cell escapes a table cell.
func cell(s string) string { return strings.ReplaceAll(strings.ReplaceAll(s, "|", `\|`), "\n", " ") }

func cpuModel() string {
	for line := range strings.SplitSeq(readFile("/proc/cpuinfo"), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

func memTotal() string {
	for line := range strings.SplitSeq(readFile("/proc/meminfo"), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return fmt.Sprintf("%.1f GiB", kb/(1<<20))
		}
	}
	return "unknown"
}

func readFile(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

// output runs a command and returns its combined output ("" on failure).
func output(name string, args ...string) string {
	b, err := exec.Command(name, args...).CombinedOutput()
	if err != nil && len(b) == 0 {
		return ""
	}
	return string(b)
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(l)
}
