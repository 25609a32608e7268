package feed

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

func rec(subject, app string) EventRecord {
	return EventRecord{Subject: subject, App: app, Type: "t", Time: time.Now()}
}

func seqs(rs []EventRecord) []uint64 {
	out := make([]uint64, len(rs))
	for i, r := range rs {
		out[i] = r.Seq
	}
	return out
}

func TestRingKeepsTheNewestOldestFirst(t *testing.T) {
	f := New(Options{Size: 5})
	for i := range 12 {
		app := "web"
		if i%3 == 0 {
			app = "api"
		}
		f.Add(rec("instance.health."+app, app))
	}
	// Ring holds 8..12; api at 10 (i=9).
	for _, tc := range []struct {
		name   string
		filter Filter
		after  uint64
		limit  int
		want   []uint64
	}{
		{"all", Filter{}, 0, 0, []uint64{8, 9, 10, 11, 12}},
		{"limit keeps the newest", Filter{}, 0, 2, []uint64{11, 12}},
		{"after", Filter{}, 10, 0, []uint64{11, 12}},
		{"after the newest", Filter{}, 12, 0, []uint64{}},
		{"app", Filter{App: "api"}, 0, 0, []uint64{10}},
		{"app web, limit", Filter{App: "web"}, 0, 3, []uint64{9, 11, 12}},
		{"subject prefix", Filter{Subject: "instance.health.a"}, 0, 0, []uint64{10}},
		{"subject wildcard", Filter{Subject: "instance.*.web"}, 0, 0, []uint64{8, 9, 11, 12}},
		{"subject tail wildcard", Filter{Subject: "instance.>"}, 0, 0, []uint64{8, 9, 10, 11, 12}},
		{"no match", Filter{Subject: "cert.>"}, 0, 0, []uint64{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := f.Recent(tc.filter, tc.after, tc.limit)
			if !slices.Equal(seqs(got), tc.want) {
				t.Errorf("seqs %v, want %v", seqs(got), tc.want)
			}
		})
	}
	if f.Last() != 12 {
		t.Errorf("last %d", f.Last())
	}
}

func TestMatchSubject(t *testing.T) {
	for _, tc := range []struct {
		filter, subject string
		want            bool
	}{
		{"a.b.c", "a.b.c", true},
		{"a.*.c", "a.b.c", true},
		{"a.*", "a.b.c", false},
		{"a.>", "a.b.c", true},
		{"a.>", "a", false},
		{"a.b.c.d", "a.b.c", false},
		{"*.*.*", "a.b.c", true},
		{"cert.>", "cert.issued.example.com", true},
	} {
		if got := matchSubject(tc.filter, tc.subject); got != tc.want {
			t.Errorf("%s ~ %s: %v, want %v", tc.filter, tc.subject, got, tc.want)
		}
	}
}

func TestSubscribeMissesAndRepeatsNothing(t *testing.T) {
	f := New(Options{Size: 100, Buffer: 10})
	for range 3 {
		f.Add(rec("routing.changed.web", "web"))
	}
	backlog, sub := f.Subscribe(Filter{App: "web"}, 1)
	defer f.Unsubscribe(sub)
	if !slices.Equal(seqs(backlog), []uint64{2, 3}) {
		t.Fatalf("backlog %v", seqs(backlog))
	}
	f.Add(rec("routing.changed.api", "api")) // filtered out
	f.Add(rec("routing.changed.web", "web"))
	select {
	case r := <-sub.C():
		if r.Seq != 5 {
			t.Errorf("live seq %d, want 5", r.Seq)
		}
	case <-time.After(time.Second):
		t.Fatal("no live record")
	}
	if f.Subscribers() != 1 {
		t.Errorf("%d subscribers", f.Subscribers())
	}
	f.Unsubscribe(sub)
	f.Unsubscribe(sub) // twice is fine
	if f.Subscribers() != 0 {
		t.Errorf("%d subscribers after unsubscribe", f.Subscribers())
	}
}

func TestSlowSubscriberIsDroppedNotWaitedFor(t *testing.T) {
	f := New(Options{Size: 100, Buffer: 3})
	_, slow := f.Subscribe(Filter{}, 0)
	_, fast := f.Subscribe(Filter{}, 0)
	got := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range fast.C() {
			if got++; got == 10 {
				return
			}
		}
	}()
	start := time.Now()
	for i := range 10 {
		f.Add(rec(fmt.Sprintf("rejected.x.%d", i), ""))
		time.Sleep(time.Millisecond) // lets the fast reader keep up
	}
	if time.Since(start) > 2*time.Second {
		t.Error("Add waited for a subscriber")
	}
	select {
	case <-slow.Dropped():
	default:
		t.Fatal("the slow subscriber was not dropped")
	}
	if len(slow.C()) != 3 {
		t.Errorf("slow subscriber kept %d records, want its 3", len(slow.C()))
	}
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatalf("fast subscriber got %d of 10", got)
	}
	select {
	case <-fast.Dropped():
		t.Error("the fast subscriber was dropped")
	default:
	}
}

func TestCloseEndsEverySubscription(t *testing.T) {
	f := New(Options{})
	f.Add(rec("routing.changed.web", "web"))
	_, a := f.Subscribe(Filter{}, 0)
	f.Close()
	backlog, b := f.Subscribe(Filter{}, 0)
	for name, s := range map[string]*Subscription{"before": a, "after": b} {
		select {
		case <-s.Dropped():
		default:
			t.Errorf("subscription made %s Close is live", name)
		}
	}
	if !f.Closed() || f.Subscribers() != 0 || len(backlog) != 1 {
		t.Errorf("closed %v, %d subscribers, backlog %d", f.Closed(), f.Subscribers(), len(backlog))
	}
	f.Unsubscribe(a) // no double close
	f.Add(rec("routing.changed.web", "web"))
	if len(f.Recent(Filter{}, 0, 0)) != 2 {
		t.Error("the ring stopped after Close")
	}
}
