package tracker

import (
	"testing"
	"time"

	"github.com/orchestry/orchestry/pkg/events"
	"github.com/orchestry/orchestry/services/health/outlier"
)

var backoff = outlier.Backoff{Base: 10 * time.Second, Max: time.Minute}

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
				st, report = Step(st, known, tc.initial, tc.th, r, time.Time{})
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
		st, report = Step(st, true, events.HealthUnhealthy, Thresholds{Failure: 1}, Result{OK: ok}, time.Time{})
		if report || st.State != events.HealthDraining {
			t.Fatalf("draining changed: %+v report=%v", st, report)
		}
	}
}

func TestTrackerPendingUntilCommit(t *testing.T) {
	tr := New(events.HealthUnhealthy, backoff)
	pass := Result{OK: true, At: time.Now()}
	st, report := tr.Observe("a.k", "a", "i1", Thresholds{}, pass)
	if !report || st.State != events.HealthHealthy {
		t.Fatalf("first pass: %+v report=%v", st, report)
	}
	// Not committed: reported again.
	if _, report = tr.Observe("a.k", "a", "i1", Thresholds{}, pass); !report {
		t.Fatal("uncommitted state not reported again")
	}
	st.Revision = 7
	tr.Commit("a.k", st)
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

func TestStepEjected(t *testing.T) {
	t0 := time.Unix(1000, 0)
	until := t0.Add(10 * time.Second)
	ejected := events.HealthState{State: events.HealthEjected, Since: t0, LastError: "outlier: x"}
	tests := []struct {
		name    string
		results string // 'p' pass, 'f' fail, one per second from t0+1s
		th      Thresholds
		// want is the state after each result, '!' when reported.
		want []string
	}{
		{"probes before expiry change nothing", "ppfffffff", Thresholds{Failure: 2}, []string{"E", "E", "E", "E", "E", "E", "E", "E", "E"}},
		{"pass after expiry returns", "pppppppppppp", Thresholds{Success: 3}, []string{"E", "E", "E", "E", "E", "E", "E", "E", "E", "H!", "H", "H"}},
		{"failures after expiry go unhealthy", "pppppppppff", Thresholds{Failure: 2}, []string{"E", "E", "E", "E", "E", "E", "E", "E", "E", "E", "U!"}},
		{"failures counted while ejected", "ffffffffff", Thresholds{Failure: 3}, []string{"E", "E", "E", "E", "E", "E", "E", "E", "E", "U!"}},
		{"one failure after expiry waits", "pppppppppfp", Thresholds{Failure: 3}, []string{"E", "E", "E", "E", "E", "E", "E", "E", "E", "E", "H!"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := ejected
			for i, c := range tc.results {
				at := t0.Add(time.Duration(i+1) * time.Second)
				r := Result{OK: c == 'p', At: at}
				if !r.OK {
					r.Err = "boom"
				}
				var report bool
				st, report = Step(st, true, events.HealthUnhealthy, tc.th, r, until)
				got := map[string]string{events.HealthHealthy: "H", events.HealthUnhealthy: "U", events.HealthEjected: "E"}[st.State]
				if report {
					got += "!"
				}
				if got != tc.want[i] {
					t.Fatalf("after result %d (%c at +%ds): got %s, want %s", i, c, i+1, got, tc.want[i])
				}
				if report && !st.Since.Equal(at) {
					t.Fatalf("since = %v, want %v", st.Since, at)
				}
			}
		})
	}
}

func TestTrackerEjection(t *testing.T) {
	tr := New(events.HealthUnhealthy, backoff)
	t0 := time.Unix(5000, 0).UTC()
	th := Thresholds{Failure: 2}
	probe := func(ok bool, at time.Time) (events.HealthState, bool) {
		r := Result{OK: ok, At: at}
		if !ok {
			r.Err = "boom"
		}
		return tr.Observe("a.k", "a", "i1", th, r)
	}
	commit := func(st events.HealthState) {
		st.Revision++
		tr.Commit("a.k", st)
	}
	if _, ok := tr.Eject("a.k", "x", t0); ok {
		t.Fatal("ejected an unknown instance")
	}
	st, _ := probe(true, t0)
	commit(st)
	if st.State != events.HealthHealthy {
		t.Fatalf("not healthy: %+v", st)
	}

	// First ejection: base time; probes before it ends change nothing.
	at := t0.Add(time.Second)
	st, ok := tr.Eject("a.k", "5xx 80% of 20 requests", at)
	if !ok || st.State != events.HealthEjected || st.LastError != "outlier: 5xx 80% of 20 requests; ejected for 10s" || st.Ejections != 1 || !st.Since.Equal(at) {
		t.Fatalf("eject: %+v %v", st, ok)
	}
	if _, ok := tr.Eject("a.k", "again", at); ok {
		t.Fatal("ejected twice")
	}
	if got := tr.ReturnAt("a.k"); !got.Equal(at.Add(10 * time.Second)) {
		t.Fatalf("return at %v", got)
	}
	// Not committed yet: reported by the next probe too.
	if st2, report := probe(true, at.Add(time.Second)); !report || st2.State != events.HealthEjected {
		t.Fatalf("uncommitted ejection not reported again: %+v", st2)
	}
	commit(st)
	for i := 2; i < 10; i++ {
		if st2, report := probe(i%2 == 0, at.Add(time.Duration(i)*time.Second)); report || st2.State != events.HealthEjected {
			t.Fatalf("probe %d while ejected: %+v report=%v", i, st2, report)
		}
	}
	back := at.Add(10 * time.Second)
	st, report := probe(true, back)
	if !report || st.State != events.HealthHealthy {
		t.Fatalf("pass after expiry: %+v report=%v", st, report)
	}
	commit(st)

	// Ejected again right away: twice as long.
	at = back.Add(time.Second)
	st, _ = tr.Eject("a.k", "6 consecutive gateway errors", at)
	if st.LastError != "outlier: 6 consecutive gateway errors; ejected for 20s" || st.Ejections != 2 {
		t.Fatalf("second ejection: %q", st.LastError)
	}
	commit(st)
	// Failures after expiry make it unhealthy.
	if _, report := probe(false, at.Add(19*time.Second)); report {
		t.Fatal("failure before expiry reported")
	}
	st, report = probe(false, at.Add(20*time.Second))
	if !report || st.State != events.HealthUnhealthy {
		t.Fatalf("failures after expiry: %+v report=%v", st, report)
	}
	commit(st)
	st, _ = probe(true, at.Add(21*time.Second))
	commit(st)

	// Long back in service: the multiplier has decayed to the base again.
	st, _ = tr.Eject("a.k", "x", at.Add(21*time.Second+time.Hour))
	if st.Ejections != 1 || st.EjectedUntil == nil || st.EjectedUntil.Sub(st.Since) != 10*time.Second {
		t.Fatalf("after decay: %+v, want ejection 1 for 10s", st)
	}
}

func TestTrackerAdoptEjection(t *testing.T) {
	// A replica that reads an ejection another wrote knows when it ends,
	// from Ejections and EjectedUntil, and continues the history from it.
	tr := New(events.HealthUnhealthy, backoff)
	t0 := time.Unix(9000, 0).UTC()
	until := t0.Add(40 * time.Second)
	st := events.HealthState{App: "a", InstanceID: "i1", State: events.HealthEjected, Since: t0,
		LastError: outlier.Reason("x", 40*time.Second), Ejections: 3, EjectedUntil: &until, Revision: 4}
	if !tr.Adopt("a.k", st, false) {
		t.Fatal("not adopted")
	}
	if got := tr.ReturnAt("a.k"); !got.Equal(t0.Add(40 * time.Second)) {
		t.Fatalf("return at %v", got)
	}
	// Seeing it again changes nothing.
	tr.Adopt("a.k", st, true)
	back := events.HealthState{App: "a", InstanceID: "i1", State: events.HealthHealthy, Since: t0.Add(41 * time.Second), Revision: 5}
	tr.Adopt("a.k", back, false)
	got, _ := tr.Eject("a.k", "y", t0.Add(42*time.Second))
	if got.Ejections != 4 || got.EjectedUntil == nil || got.EjectedUntil.Sub(got.Since) != time.Minute {
		t.Fatalf("next ejection %+v, want 4 for the 1m cap", got)
	}
}

func TestTrackerResume(t *testing.T) {
	// Replica b probed the instance once, then a took it over and wrote
	// nothing new; when b takes it back it continues from the stored state,
	// not from its own old counts, and publishes nothing.
	tr := New(events.HealthUnhealthy, backoff)
	t0 := time.Unix(7000, 0).UTC()
	stored := events.HealthState{App: "a", InstanceID: "i1", State: events.HealthHealthy, Since: t0, ConsecutiveSuccesses: 1, Revision: 3}
	tr.Adopt("a.k", stored, false)
	th := Thresholds{Failure: 3}
	for i := range 2 {
		if _, report := tr.Observe("a.k", "a", "i1", th, Result{OK: false, Err: "boom", At: t0.Add(time.Duration(i+1) * time.Second)}); report {
			t.Fatal("reported below threshold")
		}
	}
	tr.Resume("a.k")
	got, _ := tr.Get("a.k")
	if got != stored {
		t.Fatalf("resumed %+v, want the stored %+v", got, stored)
	}
	// One more failure is one of three, not the third.
	if st, report := tr.Observe("a.k", "a", "i1", th, Result{OK: false, Err: "boom", At: t0.Add(time.Minute)}); report || st.ConsecutiveFailures != 1 {
		t.Fatalf("after resume: %+v report=%v", st, report)
	}

	// An unstored report is dropped on resume: with nothing stored the
	// instance starts afresh.
	tr.Observe("b.k", "b", "i1", th, Result{OK: true, At: t0})
	tr.Resume("b.k")
	if _, ok := tr.Get("b.k"); ok {
		t.Fatal("unstored state kept")
	}
}

func TestTrackerDrainAndUndrain(t *testing.T) {
	tr := New(events.HealthUnhealthy, backoff)
	t0 := time.Unix(5000, 0).UTC()
	th := Thresholds{Failure: 2, Success: 1}
	tr.Observe("a.k", "a", "i1", th, Result{OK: true, At: t0})
	st, report := tr.Drain("a.k", "a", "i1", t0.Add(time.Second))
	if !report || st.State != events.HealthDraining || !st.Since.Equal(t0.Add(time.Second)) || st.ConsecutiveSuccesses != 0 {
		t.Fatalf("drain: %+v %v", st, report)
	}
	if _, report := tr.Drain("a.k", "a", "i1", t0.Add(2*time.Second)); report {
		t.Fatal("draining twice reported")
	}
	// A late probe result does not undo the draining.
	if st, _ := tr.Observe("a.k", "a", "i1", th, Result{OK: true, At: t0.Add(3 * time.Second)}); st.State != events.HealthDraining {
		t.Fatalf("a probe ended draining: %+v", st)
	}
	st, report = tr.Undrain("a.k", t0.Add(4*time.Second))
	if !report || st.State != events.HealthUnhealthy {
		t.Fatalf("undrain: %+v %v, want the initial state", st, report)
	}
	if st, report := tr.Observe("a.k", "a", "i1", th, Result{OK: true, At: t0.Add(5 * time.Second)}); !report || st.State != events.HealthHealthy {
		t.Fatalf("after undrain a pass: %+v %v", st, report)
	}
	if _, report := tr.Undrain("a.k", t0.Add(6*time.Second)); report {
		t.Fatal("undrained a healthy instance")
	}
	// An instance registered as draining starts so.
	if st, report := tr.Drain("a.k2", "a", "i2", t0); !report || st.State != events.HealthDraining || st.InstanceID != "i2" {
		t.Fatalf("new draining instance: %+v %v", st, report)
	}
}
