package e2e

import (
	"regexp"
	"strconv"
	"testing"
	"time"
)

// withAutoAfter makes lb_method auto choose least_conn from rate requests
// per second, after two windows in a row and without a minimum interval.
func withAutoAfter(rate float64) stackOption {
	return func(s *stack) {
		s.routing.AutoHighRate, s.routing.AutoWindows = rate, 2
	}
}

func TestAnAutoAppTurnsToLeastConnUnderLoadAndWeighsItsSlowInstanceDown(t *testing.T) {
	s := newStack(t, withMetricsService, withAutoAfter(50))
	port := freePort(t)
	s.putApp("web", port, "  lb_method: auto\n")
	bs := []*backend{startBackend(t, "a"), startBackend(t, "b"), startBackend(t, "slow")}
	for _, b := range bs {
		s.addBackend("web", b)
	}
	waitServes(t, port, "a", "b", "slow")
	if conf := s.readFile("live/apps/web.conf"); regexp.MustCompile(`least_conn|weight=[^1]`).MatchString(conf) {
		t.Fatalf("before any traffic auto is plain round robin:\n%s", conf)
	}
	bs[2].delay.Store(int64(40 * time.Millisecond))

	l := startLoad(t, port, 4, 1_000_000)
	defer l.halt()
	slowServer := regexp.MustCompile(`server 127\.0\.0\.1:` + strconv.Itoa(bs[2].Port) + ` weight=1 `)
	deadline := time.Now().Add(30 * time.Second)
	var conf string
	for time.Now().Before(deadline) {
		conf = s.readFile("live/apps/web.conf")
		if regexp.MustCompile(`least_conn;`).MatchString(conf) && slowServer.MatchString(conf) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !regexp.MustCompile(`least_conn;`).MatchString(conf) || !slowServer.MatchString(conf) {
		t.Fatalf("under load with one instance 40 ms slower, within 30s the live config is not least_conn with the slow one at weight 1 (others 4):\n%s", conf)
	}
	for _, b := range bs[:2] {
		if !regexp.MustCompile(`server 127\.0\.0\.1:` + strconv.Itoa(b.Port) + ` weight=4 `).MatchString(conf) {
			t.Errorf("fast instance %s not at weight 4:\n%s", b.ID, conf)
		}
	}
	if n := l.failed.Load(); n != 0 {
		t.Errorf("%d requests failed while the method changed: %v", n, l.firstErr.Load())
	}
	t.Logf("%d requests, %d to the slow instance", l.ok.Load(), l.served("slow"))
}
