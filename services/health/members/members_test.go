package members

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/orchestry/orchestry/pkg/events"
	"github.com/orchestry/orchestry/pkg/events/eventstest"
)

func TestOwnerRendezvous(t *testing.T) {
	all := []string{"a", "b", "c"}
	counts := map[string]int{}
	for i := range 3000 {
		key := fmt.Sprintf("app/i%d", i)
		o := Owner(all, key)
		counts[o]++
		// Removing a member moves only its keys.
		for _, gone := range all {
			rest := slices.DeleteFunc(slices.Clone(all), func(m string) bool { return m == gone })
			if o != gone && Owner(rest, key) != o {
				t.Fatalf("key %s moved from %s when %s left", key, o, gone)
			}
		}
	}
	for _, m := range all {
		if counts[m] < 800 {
			t.Errorf("uneven spread: %v", counts)
		}
	}
	if Owner(nil, "x") != "" {
		t.Error("owner of empty group")
	}
}

func TestGroupLiveness(t *testing.T) {
	srv := eventstest.Start(t, "")
	_, js := srv.Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, events.BucketMembers)
	if err != nil {
		t.Fatal(err)
	}
	log := zerolog.Nop()
	actx, acancel := context.WithCancel(ctx)
	a := New(kv, "health", "a", 50*time.Millisecond, 300*time.Millisecond, log)
	aDone, err := a.Start(actx)
	if err != nil {
		t.Fatal(err)
	}
	bctx, bcancel := context.WithCancel(ctx)
	b := New(kv, "health", "b", 50*time.Millisecond, 300*time.Millisecond, log)
	bDone, err := b.Start(bctx)
	if err != nil {
		t.Fatal(err)
	}
	waitLive := func(g *Group, want []string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !slices.Equal(g.Live(), want) {
			if time.Now().After(deadline) {
				t.Fatalf("%s sees %v, want %v", g.self, g.Live(), want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitLive(a, []string{"a", "b"})
	waitLive(b, []string{"a", "b"})
	// a crashes: no leave; b drops it once the lease passes.
	acancel()
	<-aDone
	waitLive(b, []string{"b"})
	// b stops and leaves gracefully; a fresh c sees nobody else.
	bcancel()
	<-bDone
	if err := b.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	c := New(kv, "health", "c", 50*time.Millisecond, 300*time.Millisecond, log)
	if _, err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	waitLive(c, []string{"c"})
}
