package e2e

import (
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// splitClient sends requests on kept-alive connections, so that thousands
// of them take little time; NGINX places each on its own all the same.
type splitClient struct {
	t      *testing.T
	port   int
	client *http.Client
}

func newSplitClient(t *testing.T, port int) *splitClient {
	return &splitClient{t: t, port: port, client: &http.Client{Timeout: 10 * time.Second}}
}

// get returns the instance answering path with header, or "status:N" /
// "error:…".
func (c *splitClient) get(path string, header map[string]string) string {
	c.t.Helper()
	return routeWith(c.t, c.client, c.port, path, header)
}

// waitAnswers polls path (at most 15s) until each of want has answered,
// so the rules are live.
func (c *splitClient) waitAnswers(path string, header map[string]string, want ...string) {
	c.t.Helper()
	seen := map[string]int{}
	for deadline := time.Now().Add(15 * time.Second); slices.ContainsFunc(want, func(w string) bool { return seen[w] == 0 }); {
		if time.Now().After(deadline) {
			c.t.Fatalf("%s: answered by %v within 15s, want each of %v", path, seen, want)
		}
		seen[c.get(path, header)]++
	}
}

// share fails the test unless got of n is pct±tol percent, and returns
// the measured percentage.
func share(t *testing.T, what string, got, n int, pct, tol float64) float64 {
	t.Helper()
	p := 100 * float64(got) / float64(n)
	t.Logf("%s: %d of %d = %.1f%% (want %.0f±%.0f)", what, got, n, p, pct, tol)
	if math.Abs(p-pct) > tol {
		t.Errorf("%s: %.1f%%, want %.0f±%.0f", what, p, pct, tol)
	}
	return p
}

func TestAWeightedSplitSendsItsShareOfEachRequestToTheSplitTarget(t *testing.T) {
	s := newStack(t)
	port := routedApps(s, `  - id: canary
    match: {path: /}
    split: {target: canary, percent: 20}
  - id: shop
    target: shop
    priority: 5
    match: {path: /shop/}
    split: {target: canary, percent: 50}
`, "canary", "shop")
	c := newSplitClient(t, port)
	c.waitAnswers("/", nil, "web", "canary")
	count := map[string]int{}
	const n = 1000
	for range n {
		count[c.get("/x", nil)]++
	}
	if count["web"]+count["canary"] != n {
		t.Fatalf("answers %v, want only web and canary", count)
	}
	share(t, "split 20% of /", count["canary"], n, 20, 5)

	// A split of a rule with its own target: the rest goes to that target.
	count = map[string]int{}
	for range 200 {
		count[c.get("/shop/item", nil)]++
	}
	if count["shop"]+count["canary"] != 200 {
		t.Fatalf("/shop/: answers %v, want only shop and canary", count)
	}
	share(t, "split 50% of /shop/", count["canary"], 200, 50, 12)
}

func TestAStickySplitKeepsEachClientOnItsVariant(t *testing.T) {
	s := newStack(t)
	port := routedApps(s, `  - id: cookie
    match: {path: /c/}
    split: {target: canary, percent: 30, sticky: {cookie: ab-group}}
  - id: plain-cookie
    match: {path: /p/}
    split: {target: canary, percent: 30, sticky: {cookie: abgroup}}
  - id: header
    match: {path: /h/}
    split: {target: canary, percent: 30, sticky: {header: X-User-Id}}
`, "canary")
	for _, v := range []struct {
		name, path string
		header     func(id string) map[string]string
	}{
		{"cookie with '-'", "/c/", func(id string) map[string]string {
			return map[string]string{"Cookie": "theme=dark; ab-group=" + id + "; x-ab-group=other"}
		}},
		{"cookie", "/p/", func(id string) map[string]string { return map[string]string{"Cookie": "abgroup=" + id} }},
		{"header", "/h/", func(id string) map[string]string { return map[string]string{"X-User-Id": id} }},
	} {
		t.Run(v.name, func(t *testing.T) {
			c := newSplitClient(t, port)
			c.waitAnswers(v.path, v.header("probe"), "web")
			const clients = 200
			canary := 0
			for i := range clients {
				id := fmt.Sprintf("user-%d", i)
				first := c.get(v.path, v.header(id))
				if first != "web" && first != "canary" {
					t.Fatalf("%s: answered by %s", id, first)
				}
				if first == "canary" {
					canary++
				}
				// Every client is checked a few times, the first ten 50 times.
				repeat := 4
				if i < 10 {
					repeat = 49
				}
				for j := range repeat {
					if got := c.get(v.path+fmt.Sprint(j), v.header(id)); got != first {
						t.Fatalf("%s: request %d answered by %s, the first by %s", id, j+2, got, first)
					}
				}
			}
			share(t, "sticky 30% by "+v.name, canary, clients, 30, 8)
			// Without the cookie or header the client address decides: every
			// request from here gets one variant.
			first := c.get(v.path, nil)
			for j := range 49 {
				if got := c.get(v.path, map[string]string{"Cookie": "other=1"}); got != first {
					t.Fatalf("no sticky value: request %d answered by %s, the first by %s", j+2, got, first)
				}
			}
			if strings.HasPrefix(first, "status:") || strings.HasPrefix(first, "error:") {
				t.Fatalf("no sticky value: %s", first)
			}
		})
	}
}
