// Package stats holds the summary statistics of the benchmark reports:
// minimum, median and maximum over runs, and nearest-rank percentiles of
// latency samples.
package stats

import (
	"math"
	"slices"
	"time"
)

// Summary is the minimum, median and maximum of a set of values, and how
// many there were.
type Summary struct {
	N                int
	Min, Median, Max float64
}

// Summarize returns the summary of xs; the zero Summary when xs is empty.
// NaN values are left out.
func Summarize(xs []float64) Summary {
	s := sorted(xs)
	if len(s) == 0 {
		return Summary{}
	}
	return Summary{N: len(s), Min: s[0], Median: median(s), Max: s[len(s)-1]}
}

// Median is the median of xs (the mean of the two middle values when
// there is an even number of them); NaN when xs is empty.
func Median(xs []float64) float64 {
	s := sorted(xs)
	if len(s) == 0 {
		return math.NaN()
	}
	return median(s)
}

// Percentile is the nearest-rank p-th percentile of xs (0 < p <= 100): the
// smallest value at least p percent of the values are less than or equal
// to. NaN when xs is empty; p <= 0 gives the minimum, p > 100 the maximum.
func Percentile(xs []float64, p float64) float64 {
	s := sorted(xs)
	if len(s) == 0 {
		return math.NaN()
	}
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// Durations converts ds to float64 milliseconds.
func Durations(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = float64(d) / float64(time.Millisecond)
	}
	return out
}

// Ratios divides a by b pair by pair (the runs of two configs measured in
// the same round), over the shorter of the two; a pair with a zero or NaN
// denominator is left out.
func Ratios(a, b []float64) []float64 {
	var out []float64
	for i := range min(len(a), len(b)) {
		if b[i] == 0 || math.IsNaN(b[i]) || math.IsNaN(a[i]) {
			continue
		}
		out = append(out, a[i]/b[i])
	}
	return out
}

func sorted(xs []float64) []float64 {
	s := make([]float64, 0, len(xs))
	for _, x := range xs {
		if !math.IsNaN(x) {
			s = append(s, x)
		}
	}
	slices.Sort(s)
	return s
}

func median(s []float64) float64 {
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
