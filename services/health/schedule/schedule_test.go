package schedule

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestRunsEveryTargetAndSkipsBusy(t *testing.T) {
	var mu sync.Mutex
	runs := map[string]int{}
	var concurrent, maxConcurrent atomic.Int32
	block := make(chan struct{})
	work := func(ctx context.Context, key string, v int) {
		n := concurrent.Add(1)
		defer concurrent.Add(-1)
		for {
			m := maxConcurrent.Load()
			if n <= m || maxConcurrent.CompareAndSwap(m, n) {
				break
			}
		}
		mu.Lock()
		runs[key]++
		mu.Unlock()
		if key == "slow" {
			select {
			case <-block:
			case <-ctx.Done():
			}
		}
	}
	s := New(2, work, func(key string) bool { return key != "foreign" })
	for _, k := range []string{"a", "b", "slow", "foreign"} {
		s.Set(Spec[int]{Key: k, Period: 20 * time.Millisecond})
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()

	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		a, b := runs["a"], runs["b"]
		mu.Unlock()
		if a >= 5 && b >= 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("targets not run: a=%d b=%d", a, b)
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.Remove("a")
	mu.Lock()
	aAtRemove := runs["a"]
	mu.Unlock()
	time.Sleep(100 * time.Millisecond)
	close(block)
	cancel()
	<-done

	mu.Lock()
	defer mu.Unlock()
	if runs["slow"] != 1 {
		t.Errorf("slow target ran %d times while its first run blocked, want 1", runs["slow"])
	}
	if runs["foreign"] != 0 {
		t.Errorf("unowned target ran %d times", runs["foreign"])
	}
	if runs["a"] > aAtRemove+1 {
		t.Errorf("removed target kept running: %d runs after removal", runs["a"]-aAtRemove)
	}
	if maxConcurrent.Load() > 2 {
		t.Errorf("%d concurrent runs with 2 workers", maxConcurrent.Load())
	}
	if s.Skipped() == 0 {
		t.Error("no skipped runs recorded for the blocked target")
	}
	if s.Has("a") || !s.Has("b") {
		t.Error("Has disagrees with Set/Remove")
	}
}

// TestFirstRunSpreadOnlyWhenAsked: a target added alone is first run at
// once (after its initial delay); targets added with Spread have their
// first runs scattered over a period. Checked through the scheduled
// times, not the clock.
func TestFirstRunSpreadOnlyWhenAsked(t *testing.T) {
	s := New(1, func(context.Context, string, int) {}, func(string) bool { return true })
	period, delay := time.Hour, time.Minute
	before := time.Now()
	s.Set(Spec[int]{Key: "alone", Period: period, InitialDelay: delay})
	for i := range 50 {
		s.Set(Spec[int]{Key: string(rune('a' + i)), Period: period, InitialDelay: delay, Spread: true})
	}
	after := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if next := s.targets["alone"].next; next.Before(before.Add(delay)) || next.After(after.Add(delay)) {
		t.Errorf("alone: first run %s after adding, want its initial delay %s", next.Sub(before), delay)
	}
	var lo, hi time.Duration = period, 0
	for i := range 50 {
		d := s.targets[string(rune('a'+i))].next.Sub(before) - delay
		if d < 0 || d > period+after.Sub(before) {
			t.Fatalf("spread target first run %s past its delay, want within the period %s", d, period)
		}
		lo, hi = min(lo, d), max(hi, d)
	}
	if hi-lo < period/4 {
		t.Errorf("50 spread first runs fall within %s of each other, want them scattered over %s", hi-lo, period)
	}
}
