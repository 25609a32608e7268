package events

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestFollowerRecreatesAStuckConsumer: a consumer that stops delivering
// without any error (as one did for over a minute after a NATS node died)
// is noticed by the follower's own check, events pending on the server
// and none handed on, and recreated after the last event handled: the
// events published meanwhile arrive, each once and in order.
func TestFollowerRecreatesAStuckConsumer(t *testing.T) {
	t.Parallel() // waits out the check's period
	js := startJetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}}); err != nil {
		t.Fatal(err)
	}
	pub := func(n int) {
		for range n {
			if _, err := js.Publish(ctx, "t.x", []byte("x")); err != nil {
				t.Fatal(err)
			}
		}
	}
	pub(3)
	var mu sync.Mutex
	var seqs []uint64
	var trouble []string
	f, err := FollowMessages(ctx, js, FollowOptions{Stream: "T", Subjects: []string{"t.>"}, Deliver: jetstream.DeliverAllPolicy,
		Trouble: func(err error) { mu.Lock(); trouble = append(trouble, err.Error()); mu.Unlock() }},
		func(m jetstream.Msg) {
			md, _ := m.Metadata()
			mu.Lock()
			seqs = append(seqs, md.Sequence.Stream)
			mu.Unlock()
		})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Stop()
	<-f.CaughtUp()
	// The consumer goes quiet without telling anyone.
	f.mu.Lock()
	f.cc.Stop()
	f.mu.Unlock()
	pub(4)
	deadline := time.Now().Add(time.Minute) // the check runs every followStall
	for {
		mu.Lock()
		n := len(seqs)
		mu.Unlock()
		if n >= 7 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("handed on %v within a minute of the consumer going quiet; trouble %v", seqs, trouble)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // a duplicate would show now
	mu.Lock()
	defer mu.Unlock()
	for i, s := range seqs {
		if s != uint64(i+1) {
			t.Fatalf("handed on %v, want 1..7 once each in order", seqs)
		}
	}
	if len(seqs) != 7 || len(trouble) == 0 {
		t.Fatalf("handed on %v, trouble %v: want 7 and the recreation reported", seqs, trouble)
	}
	t.Logf("recreated: %s", trouble[len(trouble)-1])
}

// TestFollowerNewOnlyIsNotRecreated: a follower of new events only, or of
// those since a time, on a stream with older ones, is not taken for stuck:
// the older events count as handed on.
func TestFollowerNewOnlyIsNotRecreated(t *testing.T) {
	t.Parallel() // waits out the check's period
	for name, opts := range map[string]func() FollowOptions{
		"new only":   func() FollowOptions { return FollowOptions{Deliver: jetstream.DeliverNewPolicy} },
		"since time": func() FollowOptions { now := time.Now(); return FollowOptions{StartTime: &now} },
	} {
		t.Run(name, func(t *testing.T) { t.Parallel(); followsOnlyWhatItAsked(t, opts) })
	}
}

// followsOnlyWhatItAsked publishes old events, then follows with the
// options opts makes.
func followsOnlyWhatItAsked(t *testing.T, opts func() FollowOptions) {
	js := startJetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := js.Publish(ctx, "t.x", []byte("old")); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	var trouble []string
	var got []string
	o := opts()
	o.Stream, o.Subjects = "T", []string{"t.>"}
	o.Trouble = func(err error) { mu.Lock(); trouble = append(trouble, err.Error()); mu.Unlock() }
	f, err := FollowMessages(ctx, js, o, func(m jetstream.Msg) { mu.Lock(); got = append(got, string(m.Data())); mu.Unlock() })
	if err != nil {
		t.Fatal(err)
	}
	defer f.Stop()
	time.Sleep(3*followStall + time.Second)
	if _, err := js.Publish(ctx, "t.x", []byte("new")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	mu.Lock()
	defer mu.Unlock()
	if len(trouble) != 0 || len(got) != 1 || got[0] != "new" {
		t.Fatalf("handed on %v with trouble %v; want only the new event and no recreation", got, trouble)
	}
}

// startJetStream runs a JetStream server for t and connects to it
// (eventstest cannot be used here: it imports this package).
func startJetStream(t *testing.T) jetstream.JetStream {
	t.Helper()
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	t.Cleanup(srv.Shutdown)
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}
