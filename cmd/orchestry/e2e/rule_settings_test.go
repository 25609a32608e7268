package e2e

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// send sends one request to port on a fresh connection and returns the
// response with its body read.
func send(t *testing.T, method string, port int, path string, header map[string]string, body string) *http.Response {
	t.Helper()
	resp, err := freshConns.Do(newRequest(t, method, port, path, header, body))
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func TestARulesOwnBodySizeTimeoutHeadersAndRateLimitApplyOnlyToTheRequestsItRoutes(t *testing.T) {
	s := newStack(t)
	port := routedAppsWith(s, `    headers: {X-Frame-Options: DENY}
  rules:
  - id: upload
    target: api
    priority: 2
    match: {path: /upload/}
    max_body_size: 1k
    headers: {X-Rule: upload, x-frame-options: SAMEORIGIN}
    rate_limit: {requests_per_second: 1, burst: 3}
  - id: quick
    priority: 1
    match:
      headers: [{name: X-Quick, type: exists}]
    timeout: 0.5
`, "api")
	quick := map[string]string{"X-Quick": "1"}
	// The rule locations are live once a quick request reaches web through
	// its rule (no rate limit there).
	expectRoutes(t, port, []routeCase{{"/x", quick, "web"}, {"/other", nil, "web"}})
	time.Sleep(time.Second) // the upload burst is full again

	// Routing inside a rule location: the right app, the original URI.
	r := send(t, http.MethodGet, port, "/upload/a%20b/c%2Fd?x=1&y=%2F", nil, "")
	if got := r.Header.Get("X-Instance"); r.StatusCode != http.StatusOK || got != "api" {
		t.Fatalf("upload rule: %d from %q, want 200 from api", r.StatusCode, got)
	}
	if got := r.Header.Get("X-Request-URI"); got != "/upload/a%20b/c%2Fd?x=1&y=%2F" {
		t.Errorf("upstream saw %q, want the request URI as sent", got)
	}
	// Headers: the rule's added, its own value for a name the app sets too.
	if r.Header.Get("X-Rule") != "upload" || r.Header.Values("X-Frame-Options")[0] != "SAMEORIGIN" || len(r.Header.Values("X-Frame-Options")) != 1 {
		t.Errorf("upload rule headers: X-Rule %q, X-Frame-Options %q", r.Header.Get("X-Rule"), r.Header.Values("X-Frame-Options"))
	}
	r = send(t, http.MethodGet, port, "/other", nil, "")
	if r.Header.Get("X-Rule") != "" || r.Header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("app headers: X-Rule %q, X-Frame-Options %q", r.Header.Get("X-Rule"), r.Header.Get("X-Frame-Options"))
	}

	// Body size: 2 KiB is over the rule's 1k, under the app's 1m.
	big := strings.Repeat("x", 2048)
	if r := send(t, http.MethodPost, port, "/upload/file", nil, big); r.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("2 KiB to the upload rule: %d, want 413", r.StatusCode)
	}
	if r := send(t, http.MethodPost, port, "/upload/file", map[string]string{"Transfer-Encoding": "chunked"}, big); r.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("2 KiB chunked to the upload rule: %d, want 413", r.StatusCode)
	}
	if r := send(t, http.MethodPost, port, "/other", nil, big); r.StatusCode != http.StatusOK {
		t.Errorf("2 KiB to the app: %d, want 200", r.StatusCode)
	}

	// Timeout: the backend takes 1.5 s on /slow; the quick rule waits 0.5 s.
	start := time.Now()
	if r := send(t, http.MethodGet, port, "/slow", quick, ""); r.StatusCode != http.StatusGatewayTimeout {
		t.Errorf("/slow through the quick rule: %d after %s, want 504", r.StatusCode, time.Since(start))
	}
	if r := send(t, http.MethodGet, port, "/slow", nil, ""); r.StatusCode != http.StatusOK {
		t.Errorf("/slow through the app: %d, want 200 (its timeout is 60 s)", r.StatusCode)
	}

	// Rate limit: the rule's applies to its requests only.
	count := func(path string) map[int]int {
		out := map[int]int{}
		for range 20 {
			out[send(t, http.MethodGet, port, path, nil, "").StatusCode]++
		}
		return out
	}
	time.Sleep(3 * time.Second) // the burst is full again
	if got := count("/upload/x"); got[http.StatusTooManyRequests] < 10 || got[http.StatusOK] < 1 {
		t.Errorf("20 quick requests to the upload rule (1 r/s, burst 3): %v, want mostly 429", got)
	}
	if got := count("/other"); got[http.StatusOK] != 20 {
		t.Errorf("20 quick requests to the app: %v, want all 200", got)
	}
}
