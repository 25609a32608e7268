package events_test

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/orchestry/orchestry/pkg/events"
	"github.com/orchestry/orchestry/pkg/events/eventstest"
)

// received collects what a follower hands on, for the test to wait on.
type received struct {
	mu       sync.Mutex
	revs     []uint64
	rejected []string
}

func (r *received) add(ev events.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.revs = append(r.revs, ev.Payload.(events.RoutingState).Revision)
}

func (r *received) reject(subject string, _ error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rejected = append(r.rejected, subject)
}

func (r *received) snapshot() ([]uint64, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]uint64(nil), r.revs...), append([]string(nil), r.rejected...)
}

// waitUntil polls cond for at most d (a bound on a functional wait, not a
// speed claim).
func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func publishState(t *testing.T, js jetstream.JetStream, app string, rev uint64) {
	t.Helper()
	st := sampleState()
	st.App.Metadata.Name, st.Revision = app, rev
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := events.Publish(ctx, js, "test", events.RoutingChanged(app), st); err != nil {
		t.Fatalf("publish %s rev %d: %v", app, rev, err)
	}
}

// startServer runs a JetStream server on port (-1: any) with its
// store in dir, so a test can stop it and start it again in its place.
func startServer(t *testing.T, dir string, port int) *server.Server {
	t.Helper()
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: dir, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready within 10s")
	}
	t.Cleanup(s.Shutdown)
	return s
}

// TestFollowReplaysRejectsAndSurvivesServerRestart: a follower replays
// what the stream holds in order, keeps a refused event from its handler
// (answering it on rejected.<subject>), and after its NATS server stops
// and starts again goes on from where it was: nothing lost, nothing
// handed on twice.
func TestFollowReplaysRejectsAndSurvivesServerRestart(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, dir, -1)
	port := srv.Addr().(*net.TCPAddr).Port
	nc, err := nats.Connect(srv.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := events.Provision(ctx, js, 1); err != nil {
		t.Fatal(err)
	}
	publishState(t, js, "web", 1)
	publishState(t, js, "web", 2)
	if _, err := js.Publish(ctx, events.RoutingChanged("bad"), []byte(`{"not":"an event"}`)); err != nil {
		t.Fatal(err)
	}
	publishState(t, js, "web", 3)

	var got received
	var trouble []error
	var tmu sync.Mutex
	f, err := events.Follow(ctx, js, events.FollowOptions{
		Stream: events.StreamRouting, Subjects: []string{events.RoutingChangedWildcard},
		Deliver: jetstream.DeliverAllPolicy, Source: "test/follow",
		Rejected: got.reject,
		Trouble:  func(err error) { tmu.Lock(); trouble = append(trouble, err); tmu.Unlock() },
	}, got.add)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Stop()
	select {
	case <-f.CaughtUp():
	case <-time.After(30 * time.Second):
		t.Fatal("not caught up with 4 events within 30s")
	}
	revs, rejected := got.snapshot()
	if fmt.Sprint(revs) != "[1 2 3]" || fmt.Sprint(rejected) != "[routing.changed.bad]" {
		t.Fatalf("replay handed on %v and rejected %v, want [1 2 3] and [routing.changed.bad]", revs, rejected)
	}
	rej, err := js.Stream(ctx, events.StreamRejected)
	if err != nil {
		t.Fatal(err)
	}
	if msg, err := rej.GetLastMsgForSubject(ctx, events.Rejected(events.RoutingChanged("bad"))); err != nil {
		t.Fatalf("no rejection published for the refused event: %v", err)
	} else if _, err := events.Decode(msg.Subject, msg.Data); err != nil {
		t.Fatalf("the rejection does not decode: %v", err)
	}

	// The server goes away and comes back on the same port and store.
	srv.Shutdown()
	srv.WaitForShutdown()
	startServer(t, dir, port)
	waitUntil(t, 30*time.Second, "client reconnected", nc.IsConnected)
	publishState(t, js, "web", 4)
	publishState(t, js, "api", 1)
	waitUntil(t, 60*time.Second, "events published after the restart handed on", func() bool {
		revs, _ := got.snapshot()
		return len(revs) >= 5
	})
	time.Sleep(500 * time.Millisecond) // anything handed on twice would show now
	revs, _ = got.snapshot()
	if fmt.Sprint(revs) != "[1 2 3 4 1]" {
		t.Fatalf("after the restart the follower handed on %v, want [1 2 3 4 1]", revs)
	}
	tmu.Lock()
	t.Logf("consumer trouble reported while the server was away: %v", trouble)
	tmu.Unlock()
}

// TestWatchKVReplaysLatestThenFollows: WatchKV hands on the latest revision
// of each key (a deleted key as deleted), then every change, in order.
func TestWatchKVReplaysLatestThenFollows(t *testing.T) {
	_, js := eventstest.Start(t, "").Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	kv, err := js.KeyValue(ctx, events.BucketApps)
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []func() error{
		func() error { _, err := kv.Put(ctx, "a", []byte("a1")); return err },
		func() error { _, err := kv.Put(ctx, "b", []byte("b1")); return err },
		func() error { _, err := kv.Put(ctx, "a", []byte("a2")); return err },
		func() error { return kv.Delete(ctx, "b") },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	var got []string
	f, err := events.WatchKV(ctx, js, events.BucketApps, events.FollowOptions{}, func(u events.KVUpdate) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, fmt.Sprintf("%s@%d:%s:%v", u.Key, u.Revision, u.Value, u.Deleted))
	})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Stop()
	<-f.CaughtUp()
	if _, err := kv.Put(ctx, "c", []byte("c1")); err != nil {
		t.Fatal(err)
	}
	if err := kv.Purge(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	want := "[a@3:a2:false b@4::true c@5:c1:false a@6::true]"
	waitUntil(t, 30*time.Second, "updates handed on", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) >= 4
	})
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(got) != want {
		t.Fatalf("updates %v, want %s", got, want)
	}
}
