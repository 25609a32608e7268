package tracker

import (
	"testing"
	"time"

	"github.com/orchestry/orchestry/pkg/events"
)

func TestStep(t *testing.T) {
	const (
		H = events.HealthHealthy
		U = events.HealthUnhealthy
	)
	tests := []struct {
		name    string
		initial string
		th      Thresholds
		results string // 'p' pass, 'f' fail
		// want is the state after each result and whether it was reported
		// ('!' after the state letter).
		want []string
	}{
		{"new unhealthy passes once", U, Thresholds{}, "p", []string{"H!"}},
		{"new unhealthy fails first", U, Thresholds{}, "ff", []string{"U!", "U"}},
		{"new healthy reports first state", H, Thresholds{}, "pp", []string{"H!", "H"}},
		{"default failure threshold 3", H, Thresholds{}, "pfff", []string{"H!", "H", "H", "U!"}},
		{"failure threshold 2", U, Thresholds{Failure: 2}, "pffff", []string{"H!", "H", "U!", "U", "U"}},
		{"success threshold 2", U, Thresholds{Success: 2}, "ppp", []string{"U!", "H!", "H"}},
		{"flapping below failure threshold", U, Thresholds{Failure: 2}, "pfpfpfp", []string{"H!", "H", "H", "H", "H", "H", "H"}},
		{"flapping below success threshold", U, Thresholds{Success: 2}, "fpfpfp", []string{"U!", "U", "U", "U", "U", "U"}},
		{"recovery", U, Thresholds{Failure: 1}, "pfp", []string{"H!", "U!", "H!"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var st events.HealthState
			known := false
			at := time.Unix(1000, 0)
			for i, c := range tc.results {
				at = at.Add(time.Second)
				r := Result{OK: c == 'p', Latency: 1500 * time.Microsecond, At: at}
				if !r.OK {
					r.Err = "boom"
				}
				prev := st.State
				var report bool
				st, report = Step(st, known, tc.initial, tc.th, r)
				known = true
				got := map[string]string{H: "H", U: "U"}[st.State]
				if report {
					got += "!"
				}
				if got != tc.want[i] {
					t.Fatalf("after result %d (%c): got %s, want %s", i, c, got, tc.want[i])
				}
				if report && prev != st.State && !st.Since.Equal(at) {
					t.Fatalf("since = %v, want %v", st.Since, at)
				}
				if r.OK && (st.ConsecutiveFailures != 0 || st.LastError != "") {
					t.Fatalf("pass left failures=%d err=%q", st.ConsecutiveFailures, st.LastError)
				}
				if !r.OK && (st.ConsecutiveSuccesses != 0 || st.LastError != "boom") {
					t.Fatalf("fail left successes=%d err=%q", st.ConsecutiveSuccesses, st.LastError)
				}
				if st.LastLatencyMS != 1.5 {
					t.Fatalf("latency = %v ms", st.LastLatencyMS)
				}
			}
		})
	}
}

func TestStepKeepsOtherStates(t *testing.T) {
	st := events.HealthState{State: events.HealthDraining}
	for _, ok := range []bool{true, false, false, false, true} {
		var report bool
		st, report = Step(st, true, events.HealthUnhealthy, Thresholds{Failure: 1}, Result{OK: ok})
		if report || st.State != events.HealthDraining {
			t.Fatalf("draining changed: %+v report=%v", st, report)
		}
	}
}

func TestTrackerPendingUntilCommit(t *testing.T) {
	tr := New(events.HealthUnhealthy)
	pass := Result{OK: true, At: time.Now()}
	st, report := tr.Observe("a.k", "a", "i1", Thresholds{}, pass)
	if !report || st.State != events.HealthHealthy {
		t.Fatalf("first pass: %+v report=%v", st, report)
	}
	// Not committed: reported again.
	if _, report = tr.Observe("a.k", "a", "i1", Thresholds{}, pass); !report {
		t.Fatal("uncommitted state not reported again")
	}
	tr.Commit("a.k", 7)
	st, report = tr.Observe("a.k", "a", "i1", Thresholds{}, pass)
	if report || st.Revision != 7 {
		t.Fatalf("after commit: %+v report=%v", st, report)
	}
	// An older stored state is not adopted, a newer one is.
	if tr.Adopt("a.k", events.HealthState{State: events.HealthUnhealthy, Revision: 5}, false) {
		t.Fatal("adopted an older state")
	}
	if !tr.Adopt("a.k", events.HealthState{App: "a", InstanceID: "i1", State: events.HealthUnhealthy, Revision: 9}, false) {
		t.Fatal("newer state not adopted")
	}
	if got, _ := tr.Get("a.k"); got.State != events.HealthUnhealthy || got.Revision != 9 {
		t.Fatalf("after adopt: %+v", got)
	}
	if keys := tr.Keys("a."); len(keys) != 1 {
		t.Fatalf("keys = %v", keys)
	}
	tr.Forget("a.k")
	if _, ok := tr.Get("a.k"); ok {
		t.Fatal("forgotten state still there")
	}
}
