package e2e

import (
	"testing"
	"time"
)

func TestARateLimitAnswers429AboveTheRateAndPassesBelowIt(t *testing.T) {
	s := newStack(t)
	b := startBackend(t, "b1")
	port := freePort(t)
	s.putApp("web", port, "  rate_limit:\n    requests_per_second: 5\n    burst: 2\n")
	s.addBackend("web", b)
	// Wait for the instance, slowly enough to stay under the limit.
	deadline := time.Now().Add(30 * time.Second)
	for hits(t, port, 1)["b1"] != 1 {
		if time.Now().After(deadline) {
			t.Fatal("b1 not served within 30s")
		}
		time.Sleep(300 * time.Millisecond)
	}
	time.Sleep(time.Second) // let the burst refill

	// Below the rate: one request every 300 ms.
	for i := range 6 {
		if got := hits(t, port, 1); got["b1"] != 1 {
			t.Fatalf("request %d below the rate: %v", i, got)
		}
		time.Sleep(300 * time.Millisecond)
	}
	// Far above it: 40 requests at once-ish.
	got := hits(t, port, 40)
	if got["status:429"] < 30 || got["b1"] < 1 || got["b1"]+got["status:429"] != 40 {
		t.Fatalf("40 quick requests at 5 r/s with burst 2: %v; want mostly 429 and the burst served", got)
	}
	t.Logf("40 quick requests: %v", got)
}

func TestRetriesOnHTTP500MoveAFailedRequestToAHealthyInstance(t *testing.T) {
	s := newStack(t)
	good, bad := startBackend(t, "good"), startBackend(t, "bad")
	bad.fail500.Store(true)
	retrying, plain := freePort(t), freePort(t)
	s.putApp("retrying", retrying, "  retries:\n    conditions: [error, timeout, http_500]\n    tries: 2\n")
	s.addBackend("retrying", good)
	s.addBackend("retrying", bad)
	s.waitLive("retrying", bad.Port, true, 10*time.Second)
	s.settle()
	if got := hits(t, retrying, 40); got["good"] != 40 {
		t.Fatalf("with retries on http_500: %v, want every request answered by good", got)
	}
	// Only this app knows bad so far: its 500s were all retried.
	if bad.sent500.Load() == 0 {
		t.Fatal("the bad instance was never tried: the retry was not exercised")
	}

	s.putApp("plain", plain, "")
	s.addBackend("plain", good)
	s.addBackend("plain", bad)
	s.waitLive("plain", bad.Port, true, 10*time.Second)
	s.settle()
	if got := hits(t, plain, 40); got["status:500"] == 0 {
		t.Fatalf("without retries on http_500 no client saw a 500: %v; the contrast is lost", got)
	}
}
