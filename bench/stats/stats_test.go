package stats

import (
	"math"
	"testing"
	"time"
)

func TestSummarize(t *testing.T) {
	for _, c := range []struct {
		name string
		in   []float64
		want Summary
	}{
		{"empty", nil, Summary{}},
		{"one", []float64{3}, Summary{N: 1, Min: 3, Median: 3, Max: 3}},
		{"odd unsorted", []float64{5, 1, 3}, Summary{N: 3, Min: 1, Median: 3, Max: 5}},
		{"even: mean of the middle two", []float64{4, 1, 3, 2}, Summary{N: 4, Min: 1, Median: 2.5, Max: 4}},
		{"repeated", []float64{2, 2, 2}, Summary{N: 3, Min: 2, Median: 2, Max: 2}},
		{"NaN left out", []float64{math.NaN(), 1, 9}, Summary{N: 2, Min: 1, Median: 5, Max: 9}},
		{"negative", []float64{-1, -5, 0}, Summary{N: 3, Min: -5, Median: -1, Max: 0}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := Summarize(c.in); got != c.want {
				t.Errorf("Summarize(%v) = %+v, want %+v", c.in, got, c.want)
			}
		})
	}
}

func TestSummarizeDoesNotReorder(t *testing.T) {
	in := []float64{3, 1, 2}
	Summarize(in)
	if in[0] != 3 || in[1] != 1 || in[2] != 2 {
		t.Errorf("input reordered: %v", in)
	}
}

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{
		{[]float64{1}, 1},
		{[]float64{1, 2}, 1.5},
		{[]float64{9, 1, 5}, 5},
		{[]float64{1, 2, 3, 100}, 2.5},
	} {
		if got := Median(c.in); got != c.want {
			t.Errorf("Median(%v) = %v, want %v", c.in, got, c.want)
		}
	}
	if got := Median(nil); !math.IsNaN(got) {
		t.Errorf("Median(nil) = %v, want NaN", got)
	}
}

func TestPercentile(t *testing.T) {
	hundred := make([]float64, 100)
	for i := range hundred {
		hundred[i] = float64(100 - i) // 100..1, unsorted
	}
	for _, c := range []struct {
		name string
		in   []float64
		p    float64
		want float64
	}{
		{"p50 of 1..100", hundred, 50, 50},
		{"p99 of 1..100", hundred, 99, 99},
		{"p100 of 1..100", hundred, 100, 100},
		{"p1 of 1..100", hundred, 1, 1},
		{"p0 is the minimum", hundred, 0, 1},
		{"above 100 is the maximum", hundred, 150, 100},
		{"one value", []float64{7}, 99, 7},
		{"p50 of two: the lower (nearest rank)", []float64{10, 20}, 50, 10},
		{"p51 of two", []float64{10, 20}, 51, 20},
		{"p99 of 20 values: the largest", []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20}, 99, 20},
		{"p90 of 20 values", []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20}, 90, 18},
		{"NaN left out", []float64{math.NaN(), 4, 2}, 50, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := Percentile(c.in, c.p); got != c.want {
				t.Errorf("Percentile(p%v) = %v, want %v", c.p, got, c.want)
			}
		})
	}
	if got := Percentile(nil, 50); !math.IsNaN(got) {
		t.Errorf("Percentile(nil) = %v, want NaN", got)
	}
}

func TestRatios(t *testing.T) {
	for _, c := range []struct {
		name string
		a, b []float64
		want []float64
	}{
		{"pair by pair", []float64{10, 20, 30}, []float64{10, 10, 60}, []float64{1, 2, 0.5}},
		{"shorter wins", []float64{4, 4}, []float64{2}, []float64{2}},
		{"zero denominator left out", []float64{1, 2}, []float64{0, 4}, []float64{0.5}},
		{"empty", nil, nil, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := Ratios(c.a, c.b)
			if len(got) != len(c.want) {
				t.Fatalf("Ratios = %v, want %v", got, c.want)
			}
			for i := range got {
				if got[i] != c.want[i] {
					t.Errorf("Ratios = %v, want %v", got, c.want)
				}
			}
		})
	}
}

func TestDurations(t *testing.T) {
	got := Durations([]time.Duration{time.Millisecond, 1500 * time.Microsecond, 2 * time.Second})
	want := []float64{1, 1.5, 2000}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("Durations = %v, want %v", got, want)
		}
	}
}
