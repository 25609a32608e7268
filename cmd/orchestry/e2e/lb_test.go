package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// get sends one request for path to port and returns the answering
// instance ("" on any failure).
func get(t testing.TB, port int, path string, header map[string]string) string {
	t.Helper()
	got := route(t, port, path, header)
	if strings.HasPrefix(got, "status:") || strings.HasPrefix(got, "error:") {
		return ""
	}
	return got
}

// lbApp declares app on a fresh port with method and the given backends and
// waits until the live config lists all of them.
func (s *stack) lbApp(app, method string, bs ...*backend) int {
	s.t.Helper()
	port := freePort(s.t)
	s.putApp(app, port, "  lb_method: "+method+"\n")
	for _, b := range bs {
		s.addBackend(app, b)
	}
	for _, b := range bs {
		s.waitLive(app, b.Port, true, 10*time.Second)
	}
	s.settle()
	return port
}

func TestIPHashPinsAClientToOneInstance(t *testing.T) {
	s := newStack(t)
	port := s.lbApp("web", "ip_hash", startBackend(t, "b1"), startBackend(t, "b2"), startBackend(t, "b3"))
	got := hits(t, port, 30)
	if len(got) != 1 {
		t.Fatalf("one client spread over %v; ip_hash pins it to one instance", got)
	}
}

func TestSessionAffinityByCookiePinsEachSessionAndSpreadsSessions(t *testing.T) {
	s := newStack(t)
	port := freePort(t)
	s.putApp("web", port, "  session_affinity: true\n  hash_key: cookie:sid\n")
	bs := []*backend{startBackend(t, "b1"), startBackend(t, "b2"), startBackend(t, "b3")}
	for _, b := range bs {
		s.addBackend("web", b)
	}
	for _, b := range bs {
		s.waitLive("web", b.Port, true, 10*time.Second)
	}
	s.settle() // the reload that opens the port is confirmed
	if conf := s.readFile("live/apps/web.conf"); !strings.Contains(conf, "hash $cookie_sid consistent;") {
		t.Fatalf("session affinity by cookie is not a consistent hash of it:\n%s", conf)
	}
	used := map[string]int{}
	for i := range 30 {
		c := map[string]string{"Cookie": fmt.Sprintf("sid=session-%d", i)}
		first := route(t, port, "/", c)
		for range 5 {
			if got := route(t, port, "/", c); got != first {
				t.Fatalf("session %d moved from %s to %s", i, first, got)
			}
		}
		used[first]++
	}
	if len(used) != 3 {
		t.Fatalf("30 sessions landed on %v; want all three instances used", used)
	}
}

func TestLeastConnSendsNewRequestsToTheIdleInstance(t *testing.T) {
	s := newStack(t)
	port := s.lbApp("web", "least_conn", startBackend(t, "b1"), startBackend(t, "b2"))
	holder := make(chan string, 1)
	go func() { holder <- get(t, port, "/slow", nil) }()
	time.Sleep(300 * time.Millisecond) // the long request is now held by one instance
	quick := map[string]int{}
	for range 10 {
		quick[get(t, port, "/", nil)]++
	}
	held := <-holder
	if held == "" || len(quick) != 1 || quick[held] != 0 {
		t.Fatalf("long request held by %q; quick requests went to %v; least_conn should send them all to the other instance", held, quick)
	}
	// Round robin, for contrast, alternates regardless.
	rr := s.lbApp("rr", "round_robin", startBackend(t, "r1"), startBackend(t, "r2"))
	go func() { holder <- get(t, rr, "/slow", nil) }()
	time.Sleep(300 * time.Millisecond)
	quick = map[string]int{}
	for range 10 {
		quick[get(t, rr, "/", nil)]++
	}
	<-holder
	if len(quick) != 2 {
		t.Fatalf("round robin sent the quick requests to %v; want both instances", quick)
	}
}

func TestConsistentHashKeepsMostKeysWhenAnInstanceIsAdded(t *testing.T) {
	s := newStack(t)
	bs := []*backend{startBackend(t, "b1"), startBackend(t, "b2"), startBackend(t, "b3")}
	port := freePort(t)
	s.putApp("web", port, "  lb_method: hash\n  hash_key: request_uri\n")
	for _, b := range bs {
		s.addBackend("web", b)
	}
	for _, b := range bs {
		s.waitLive("web", b.Port, true, 10*time.Second)
	}
	s.settle()
	const keys = 200
	before := make([]string, keys)
	for i := range keys {
		if before[i] = get(t, port, fmt.Sprintf("/item/%d", i), nil); before[i] == "" {
			t.Fatalf("key %d failed", i)
		}
		if again := get(t, port, fmt.Sprintf("/item/%d", i), nil); again != before[i] {
			t.Fatalf("key %d went to %s, then %s", i, before[i], again)
		}
	}
	b4 := startBackend(t, "b4")
	s.addBackend("web", b4)
	s.waitLive("web", b4.Port, true, 10*time.Second)
	s.settle()
	moved, toNew := 0, 0
	for i := range keys {
		now := get(t, port, fmt.Sprintf("/item/%d", i), nil)
		if now != before[i] {
			moved++
			if now == "b4" {
				toNew++
			}
		}
	}
	// Ideally a quarter of the keys move, all to the new instance; a
	// modulo hash would move about three quarters.
	if moved > keys*40/100 || toNew != moved {
		t.Fatalf("%d of %d keys moved (%d to the new instance); consistent hashing moves about a quarter, only to it", moved, keys, toNew)
	}
	t.Logf("%d of %d keys moved, all to the new instance", moved, keys)
}
