package latency

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// exact is the true value at the rank Quantile uses.
func exact(sorted []time.Duration, q float64) time.Duration {
	return sorted[int(q*float64(len(sorted)-1))]
}

func TestQuantileWithinRelativeError(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	dists := []struct {
		name string
		gen  func() time.Duration
	}{
		{"uniform 1ms..1s", func() time.Duration { return time.Millisecond + time.Duration(rng.Int64N(int64(time.Second))) }},
		{"exponential mean 20ms", func() time.Duration { return time.Duration(rng.ExpFloat64() * float64(20*time.Millisecond)) }},
		{"lognormal around 50ms", func() time.Duration {
			return time.Duration(math.Exp(rng.NormFloat64()) * float64(50*time.Millisecond))
		}},
		{"NGINX millisecond steps 0..30ms", func() time.Duration { return time.Duration(rng.IntN(31)) * time.Millisecond }},
		{"bimodal 2ms and 2s", func() time.Duration {
			if rng.IntN(10) == 0 {
				return 2 * time.Second
			}
			return 2 * time.Millisecond
		}},
	}
	for _, d := range dists {
		t.Run(d.name, func(t *testing.T) {
			var h Histogram
			vals := make([]time.Duration, 100000)
			for i := range vals {
				vals[i] = d.gen()
				h.Record(vals[i])
			}
			slices.Sort(vals)
			if h.Count() != uint64(len(vals)) {
				t.Fatalf("Count = %d, want %d", h.Count(), len(vals))
			}
			for _, q := range []float64{0, 0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 1} {
				want, got := exact(vals, q), h.Quantile(q)
				if want < Resolution {
					if got != 0 {
						t.Errorf("q%.3f = %s, want 0", q, got)
					}
					continue
				}
				if rel := math.Abs(float64(got-want)) / float64(want); rel > RelativeError+1e-9 {
					t.Errorf("q%.3f = %s, want %s (relative error %.4f > %.4f)", q, got, want, rel, RelativeError)
				}
			}
			if h.Bytes() > 8*(maxIndex+1) {
				t.Errorf("histogram holds %d bytes, more than all buckets", h.Bytes())
			}
		})
	}
}

func TestMergeEqualsRecordingTogether(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var a, b, all Histogram
	for i := range 20000 {
		d := time.Duration(rng.ExpFloat64() * float64(time.Millisecond) * float64(1+i%7*100))
		if i%3 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
		all.Record(d)
	}
	a.Merge(&b)
	for _, q := range []float64{0.1, 0.5, 0.9, 0.99} {
		if a.Quantile(q) != all.Quantile(q) {
			t.Errorf("q%.2f merged %s != together %s", q, a.Quantile(q), all.Quantile(q))
		}
	}
	if a.Count() != all.Count() {
		t.Errorf("merged count %d != %d", a.Count(), all.Count())
	}
}

func TestEdges(t *testing.T) {
	var h Histogram
	if h.Quantile(0.5) != 0 {
		t.Fatal("empty histogram must answer 0")
	}
	h.Record(-time.Second) // ignored
	if h.Count() != 0 {
		t.Fatal("negative durations must be ignored")
	}
	h.Record(100 * time.Hour)
	if got := h.Quantile(1); math.Abs(float64(got-Max))/float64(Max) > RelativeError {
		t.Fatalf("clamped value = %s, want about %s", got, Max)
	}
	h.Record(Resolution) // grows downwards to bucket 0
	if got := h.Quantile(0); got < Resolution*98/100 || got > Resolution*102/100 {
		t.Fatalf("smallest = %s, want about %s", got, Resolution)
	}
	if h.Bytes() > 8*(maxIndex+1) {
		t.Fatalf("histogram holds %d bytes, more than all %d buckets", h.Bytes(), maxIndex+1)
	}
	h.Reset()
	if h.Count() != 0 || h.Quantile(0.5) != 0 {
		t.Fatal("Reset must empty the histogram")
	}
	h.Record(20 * time.Millisecond)
	if got := h.Quantile(0.5); math.Abs(float64(got-20*time.Millisecond)) > 0.02*float64(20*time.Millisecond) {
		t.Fatalf("after Reset: %s, want about 20ms", got)
	}
}

func BenchmarkRecord(b *testing.B) {
	var h Histogram
	for i := 0; b.Loop(); i++ {
		h.Record(time.Duration(i%1000) * time.Millisecond)
	}
}
