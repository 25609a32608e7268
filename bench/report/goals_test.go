package main

import (
	"testing"

	"github.com/orchestry/orchestry/bench/stats"
)

func TestVerdict(t *testing.T) {
	for _, c := range []struct {
		goal string
		runs []float64
		want string
		val  float64
	}{
		{"≤ 550 ms (300 ms + window)", []float64{500, 600, 540}, "met", 540},
		{"≤ 550 ms", []float64{560, 600, 540}, "**missed**", 560},
		{"≥ 0.95", []float64{0.97, 0.90, 0.96}, "met", 0.96},
		{"≥ 100", []float64{30}, "**missed**", 30},
		{"0", []float64{0, 0, 0}, "met", 0},
		{"0", []float64{0, 3, 0}, "**missed**", 3},
		{"about right", []float64{1}, "", 1},
		{"≤ 5", nil, "", 0},
	} {
		v, got := verdict(c.goal, stats.Summarize(c.runs))
		if got != c.want || (c.runs != nil && v != c.val) {
			t.Errorf("verdict(%q, %v) = %v, %q; want %v, %q", c.goal, c.runs, v, got, c.val, c.want)
		}
	}
}
