package certview

import (
	"testing"
	"time"

	"github.com/orchestry/orchestry/pkg/events"
)

func TestDomainState(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cert := &events.Certificate{Domain: "a.example.com", NotBefore: t0, NotAfter: t0.Add(90 * 24 * time.Hour)}
	fail := &events.CertFailure{Domain: "a.example.com", Reason: "x"}
	for _, tc := range []struct {
		name string
		d    Domain
		now  time.Time
		want string
	}{
		{"nothing yet", Domain{}, t0, StatePending},
		{"issued", Domain{Issued: cert, IssuedAt: t0}, t0.Add(time.Hour), StateValid},
		{"failed before it was issued", Domain{Issued: cert, IssuedAt: t0, Failure: fail, FailedAt: t0.Add(-time.Hour)}, t0.Add(time.Hour), StateValid},
		{"renewal failing", Domain{Issued: cert, IssuedAt: t0, Failure: fail, FailedAt: t0.Add(time.Hour)}, t0.Add(2 * time.Hour), StateRenewalFailing},
		{"failed first", Domain{Failure: fail, FailedAt: t0}, t0, StateFailed},
		{"expired", Domain{Issued: cert, IssuedAt: t0}, t0.Add(91 * 24 * time.Hour), StateExpired},
		{"expired and failing", Domain{Issued: cert, IssuedAt: t0, Failure: fail, FailedAt: t0.Add(time.Hour)}, t0.Add(91 * 24 * time.Hour), StateFailed},
	} {
		if got := tc.d.State(tc.now); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestObserveKeepsTheNewestOfEachKind(t *testing.T) {
	var v View
	t0 := time.Now()
	v.Observe(events.Certificate{Domain: "a.example.com", Serial: "2"}, t0.Add(time.Minute))
	v.Observe(events.Certificate{Domain: "a.example.com", Serial: "1"}, t0)
	v.Observe(events.CertFailure{Domain: "a.example.com", Reason: "down"}, t0.Add(2*time.Minute))
	d, ok := v.Lookup("a.example.com")
	if !ok || d.Issued.Serial != "2" || d.Failure.Reason != "down" {
		t.Fatalf("%+v", d)
	}
}
