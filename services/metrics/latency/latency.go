// Package latency is a small mergeable histogram of durations with
// logarithmic buckets: any quantile it returns is within RelativeError of
// the true value at that rank. Buckets are allocated only over the range of
// values seen, so a histogram of latencies between 1 ms and 1 s takes about
// 1.4 KiB.
package latency

import (
	"math"
	"time"
)

// gamma is the ratio between bucket bounds: bucket i holds values in
// (gamma^(i-1), gamma^i] microseconds.
const gamma = 1.04

// RelativeError bounds the error of a quantile relative to the true value
// (for values of at least Resolution).
const RelativeError = (gamma - 1) / (gamma + 1)

// Resolution is the smallest duration told apart from zero; smaller ones
// are counted as zero.
const Resolution = time.Microsecond

// Max is the largest duration recorded as itself; longer ones count as Max.
const Max = time.Hour

var (
	logGamma = math.Log(gamma)
	maxIndex = index(Max)
)

// Histogram counts durations. The zero value is empty and ready. It is not
// safe for concurrent use.
type Histogram struct {
	zero   uint64   // values below Resolution
	offset int      // bucket index of counts[0]
	counts []uint64 // buckets offset .. offset+len(counts)-1
	n      uint64
}

// index is the bucket of d >= Resolution.
func index(d time.Duration) int {
	return int(math.Ceil(math.Log(float64(d)/float64(Resolution)) / logGamma))
}

// value is the representative of bucket i: the point with the least
// relative distance to both of its bounds.
func value(i int) time.Duration {
	return time.Duration(2 * math.Pow(gamma, float64(i)) / (gamma + 1) * float64(Resolution))
}

// Record counts one duration; negative ones are ignored.
func (h *Histogram) Record(d time.Duration) {
	switch {
	case d < 0:
		return
	case d < Resolution:
		h.zero++
		h.n++
		return
	case d > Max:
		d = Max
	}
	h.add(index(d), 1)
}

func (h *Histogram) add(i int, c uint64) {
	h.n += c
	if h.counts == nil {
		h.offset = i
		h.counts = make([]uint64, 1, 8)
		h.counts[0] = c
		return
	}
	if i < h.offset {
		// Grow downwards, with some room to spare.
		grow := max(h.offset-i, 8)
		grow = min(grow, h.offset) // index 0 is the smallest bucket, and i >= 0
		n := make([]uint64, len(h.counts)+grow)
		copy(n[grow:], h.counts)
		h.counts = n
		h.offset -= grow
	}
	j := i - h.offset
	if j >= len(h.counts) {
		if j < cap(h.counts) {
			h.counts = h.counts[:j+1]
		} else {
			c := min(max(2*cap(h.counts), j+1), maxIndex+1-h.offset)
			n := make([]uint64, j+1, max(c, j+1))
			copy(n, h.counts)
			h.counts = n
		}
	}
	h.counts[j] += c
}

// Count is the number of durations recorded.
func (h *Histogram) Count() uint64 { return h.n }

// Quantile returns the duration at quantile q (0..1) of what was recorded:
// the value at rank floor(q*(Count-1)), within RelativeError. It returns 0
// when the histogram is empty.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	q = min(max(q, 0), 1)
	rank := uint64(q * float64(h.n-1))
	if rank < h.zero {
		return 0
	}
	seen := h.zero
	for j, c := range h.counts {
		seen += c
		if rank < seen {
			return value(h.offset + j)
		}
	}
	return value(h.offset + len(h.counts) - 1)
}

// Merge adds every count of o to h.
func (h *Histogram) Merge(o *Histogram) {
	h.zero += o.zero
	h.n += o.zero
	for j, c := range o.counts {
		if c != 0 {
			h.add(o.offset+j, c)
		}
	}
}

// Reset empties h, keeping its memory.
func (h *Histogram) Reset() {
	h.zero, h.n = 0, 0
	clear(h.counts)
}

// Bytes is the memory the histogram's buckets hold.
func (h *Histogram) Bytes() int { return 8 * cap(h.counts) }
