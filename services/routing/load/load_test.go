package load

import (
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/orchestry/orchestry/pkg/events"
	"github.com/orchestry/orchestry/pkg/events/eventstest"
	"github.com/orchestry/orchestry/services/routing/store"
)

func TestBandHasHysteresis(t *testing.T) {
	for _, tc := range []struct {
		prev     int
		cpu, mem float64
		want     int
	}{
		{0, 10, 20, 1},
		{0, 52, 0, 2},
		{0, 0, 99, 4},
		{1, 52, 0, 1},  // within the margin above 50: stays
		{1, 55, 0, 2},  // clears it
		{2, 47, 0, 2},  // within the margin below 50: stays
		{2, 45, 0, 1},  // clears it
		{1, 95, 0, 4},  // far up in one go
		{4, 10, 0, 1},  // far down in one go
		{4, 82, 0, 4},  // 82 is band 3, but not 5 below 85
		{4, 80, 10, 3}, // is
		{2, 20, 72, 2}, // memory counts: 72 is not 75
		{2, 20, 76, 3},
	} {
		if got := Band(tc.prev, tc.cpu, tc.mem); got != tc.want {
			t.Errorf("Band(%d, %v, %v) = %d, want %d", tc.prev, tc.cpu, tc.mem, got, tc.want)
		}
	}
}

func TestANoisyStatsStreamChangesTheRecordOncePerBandChange(t *testing.T) {
	srv := eventstest.Start(t, "")
	_, js := srv.Connect(t)
	ctx := context.Background()
	if err := events.Provision(ctx, js, 1); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.PutApp(ctx, events.App{Metadata: events.Metadata{Name: "web"}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.PutInstance(ctx, "web", events.Instance{ID: "a", IP: "10.0.0.1", Port: 80}); err != nil {
		t.Fatal(err)
	}
	const interval = time.Second
	f := New(js, st, interval, zerolog.New(zerolog.NewTestWriter(t)))
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- f.Run(rctx) }()
	t.Cleanup(func() { cancel(); <-done })

	rev := func() uint64 {
		e, err := st.Get(ctx, "web")
		if err != nil {
			t.Fatal(err)
		}
		return e.Revision
	}
	band := func() int {
		e, _ := st.Get(ctx, "web")
		return e.Record.Instances[0].LoadBand
	}
	publish := func(cpu float64) {
		t.Helper()
		if _, err := events.Publish(ctx, js, "test", events.InstanceStats("web"),
			events.StatsReport{InstanceID: "a", CPUPercent: cpu, ObservedAt: time.Now().UTC()}); err != nil {
			t.Fatal(err)
		}
	}
	waitBand := func(want int) {
		t.Helper()
		for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
			if band() == want {
				return
			}
		}
		t.Fatalf("band %d, want %d", band(), want)
	}
	// Wait for the consumer: the first report sets the band.
	for end := time.Now().Add(5 * time.Second); band() == 0 && time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		publish(30)
	}
	waitBand(1)
	start := rev()
	// 60 reports jittering around the 50% boundary (46..54), over several
	// intervals: the band stays 1.
	for i := range 60 {
		publish(float64(46 + (i*7)%9))
		time.Sleep(10 * time.Millisecond)
	}
	publish(20) // a marker: once applied, every earlier report was
	time.Sleep(300 * time.Millisecond)
	if got := rev(); got != start || band() != 1 {
		t.Fatalf("noise changed the record %d times (band %d)", got-start, band())
	}
	// A real change: sustained 90%. One change, to band 4.
	for range 20 {
		publish(90)
		time.Sleep(10 * time.Millisecond)
	}
	waitBand(4)
	if got := rev() - start; got != 1 {
		t.Fatalf("a sustained change wrote %d times, want 1", got)
	}
	// Back down right away: held for the minimum interval, then one change.
	publish(10)
	time.Sleep(50 * time.Millisecond)
	if band() != 4 {
		t.Fatalf("band changed again within %s", interval)
	}
	time.Sleep(interval)
	publish(10)
	waitBand(1)
	if got := rev() - start; got != 2 {
		t.Fatalf("%d writes for two real changes", got)
	}
}
