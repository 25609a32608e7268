package schedule

import (
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func day(n float64) time.Duration { return time.Duration(n * float64(24*time.Hour)) }

func TestRenewAt(t *testing.T) {
	for _, tc := range []struct {
		name     string
		lifetime time.Duration
		want     time.Duration // after notBefore
	}{
		{"90 days renews at day 60", day(90), day(60)},
		{"64 days renews 21⅓ days before expiry", day(64), day(64) - day(64)/3},
		{"45 days renews at day 30", day(45), day(30)},
		{"6 days renews at day 4", day(6), day(4)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := RenewAt(t0, t0.Add(tc.lifetime))
			if want := t0.Add(tc.want); !got.Equal(want) {
				t.Fatalf("RenewAt = %s, want %s", got, want)
			}
			if left := t0.Add(tc.lifetime).Sub(got); left != tc.lifetime/3 {
				t.Fatalf("%s left at renewal, want a third (%s)", left, tc.lifetime/3)
			}
		})
	}
}

func TestWindowPick(t *testing.T) {
	w := Window{Start: t0.Add(day(59)), End: t0.Add(day(61))}
	for _, tc := range []struct {
		name string
		now  time.Time
		u    float64
		want time.Time
	}{
		{"start of the window", t0, 0, w.Start},
		{"middle of the window", t0, 0.5, t0.Add(day(60))},
		{"near the end", t0, 0.999999, w.Start.Add(time.Duration(0.999999 * float64(day(2))))},
		{"picked time already past: now", t0.Add(day(60)), 0.25, t0.Add(day(60))},
		{"window wholly past: now", t0.Add(day(70)), 0.9, t0.Add(day(70))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := w.Pick(tc.now, func() float64 { return tc.u })
			if !got.Equal(tc.want) {
				t.Fatalf("Pick = %s, want %s", got, tc.want)
			}
		})
	}
	// With real randomness every pick stays in the window.
	for range 1000 {
		if got := w.Pick(t0, nil); !w.Contains(got) {
			t.Fatalf("Pick = %s, outside %s..%s", got, w.Start, w.End)
		}
	}
	for _, bad := range []Window{{}, {Start: w.End, End: w.Start}, {Start: w.Start, End: w.Start}} {
		if bad.Valid() {
			t.Errorf("window %v counted valid", bad)
		}
	}
}

func TestBackoffDelay(t *testing.T) {
	b := Backoff{Base: time.Minute, Max: time.Hour, Jitter: 0.2}
	for _, tc := range []struct {
		n    int
		u    float64
		want time.Duration
	}{
		{1, 0, time.Minute},
		{2, 0, 2 * time.Minute},
		{3, 0, 4 * time.Minute},
		{6, 0, 32 * time.Minute},
		{7, 0, time.Hour},
		{50, 0, time.Hour},
		{1, 0.5, 54 * time.Second},
		{7, 1, 48 * time.Minute},
	} {
		if got := b.Delay(tc.n, func() float64 { return tc.u }); got != tc.want {
			t.Errorf("Delay(%d, u=%v) = %s, want %s", tc.n, tc.u, got, tc.want)
		}
	}
	for n := 1; n < 20; n++ {
		d := b.Delay(n, nil)
		if d <= 0 || d > time.Hour {
			t.Fatalf("Delay(%d) = %s, out of (0, 1h]", n, d)
		}
	}
}

func TestBudget(t *testing.T) {
	b := Budget{Max: 5, Per: time.Hour}
	bo := Backoff{Base: time.Minute, Max: time.Hour}
	zero := func() float64 { return 0 }
	for _, tc := range []struct {
		name  string
		fails []time.Duration // offsets from t0
		now   time.Duration
		want  time.Duration // next attempt, offset from t0
	}{
		{"first failure: base back-off", []time.Duration{0}, 0, time.Minute},
		{"four failures: back-off", []time.Duration{0, 1, 3, 7}, 7 * time.Minute, 15 * time.Minute},
		{"fifth failure: wait for the hour", []time.Duration{0, 1, 3, 7, 15}, 15 * time.Minute, time.Hour},
		{"sixth: budget allows at 61m, back-off (32m) is longer", []time.Duration{0, 1, 3, 7, 15, 60}, 60 * time.Minute, 92 * time.Minute},
		{"fifth failure, long back-off off: budget wins", []time.Duration{0, 10, 20, 30, 40}, 40 * time.Minute, 60 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var g Failures
			for _, at := range tc.fails {
				g.Fail(t0.Add(at*time.Minute), b)
			}
			got := NextAttempt(t0.Add(tc.now), &g, bo, b, zero)
			if want := t0.Add(tc.want); !got.Equal(want) {
				t.Fatalf("NextAttempt = %s, want %s", got.Sub(t0), tc.want)
			}
			// Never more than Max failures within any hour.
			if got.Before(g.Allowed(t0.Add(tc.now), b)) {
				t.Fatalf("next attempt %s before the budget allows", got.Sub(t0))
			}
		})
	}
	var f Failures
	f.Fail(t0, b)
	f.Fail(t0, b)
	f.Succeed()
	if f.Consecutive != 0 || len(f.At) != 2 {
		t.Fatalf("after success: %+v, want consecutive 0 and the budget's record kept", f)
	}
	if got := f.Allowed(t0.Add(2*time.Hour), b); !got.Equal(t0.Add(2*time.Hour)) || len(f.At) != 0 {
		t.Fatalf("old failures not forgotten: %+v", f)
	}
}
