package main

// The goals table: every figure and ratio that names a goal, its median,
// and whether the median meets it.

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/orchestry/orchestry/bench/result"
	"github.com/orchestry/orchestry/bench/stats"
)

// writeGoals writes the table of goals, when any figure has one.
func writeGoals(b *strings.Builder, files []result.File) {
	type row struct{ scenario, name, goal, median, verdict string }
	var rows []row
	for _, f := range files {
		for _, g := range f.Figures {
			if g.Goal != "" {
				s := stats.Summarize(g.Runs)
				v, ok := verdict(g.Goal, s)
				rows = append(rows, row{f.Scenario, g.Name, g.Goal, num(v, s.N) + " " + g.Unit, ok})
			}
		}
		for _, r := range f.Ratios {
			if r.Goal != "" {
				s := stats.Summarize(r.Runs)
				v, ok := verdict(r.Goal, s)
				rows = append(rows, row{f.Scenario, r.Name, r.Goal, ratio(v, s.N), ok})
			}
		}
	}
	if len(rows) == 0 {
		return
	}
	b.WriteString("## Goals\n\nEach goal against the median over runs, or the maximum for a goal of an exact value (zero failed requests in every run).\n\n| scenario | figure | goal | value | |\n|---|---|---|---:|---|\n")
	for _, r := range rows {
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s |\n", r.scenario, cell(r.name), cell(r.goal), r.median, r.verdict)
	}
	b.WriteString("\n")
}

// verdict compares the median with a goal written "≤ N ..." or "≥ N ...",
// or the maximum with one written "N ..." (equal), and returns the value
// compared and "met" or "**missed**"; "" when the goal does not parse or
// nothing was measured.
func verdict(goal string, s stats.Summary) (float64, string) {
	if s.N == 0 {
		return s.Median, ""
	}
	op, rest := "=", strings.TrimSpace(goal)
	for _, p := range []string{"≤", "≥", "<=", ">="} {
		if r, ok := strings.CutPrefix(rest, p); ok {
			op, rest = p, strings.TrimSpace(r)
			break
		}
	}
	f := strings.Fields(rest)
	if len(f) == 0 {
		return s.Median, ""
	}
	want, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return s.Median, ""
	}
	v, ok := s.Median, false
	switch op {
	case "≤", "<=":
		ok = v <= want
	case "≥", ">=":
		ok = v >= want
	default:
		v = s.Max
		ok = s.Min == want && s.Max == want
	}
	if ok {
		return v, "met"
	}
	return v, "**missed**"
}
