package e2e

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// route sends one request for path (with header) to port on a fresh
// connection and returns the answering instance, or "status:N" for a
// non-200 answer.
func route(t testing.TB, port int, path string, header map[string]string) string {
	t.Helper()
	return routeWith(t, freshConns, port, path, header)
}

// freshConns opens a new connection for every request.
var freshConns = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// routeWith is route on client's connections.
func routeWith(t testing.TB, client *http.Client, port int, path string, header map[string]string) string {
	t.Helper()
	resp, err := client.Do(newRequest(t, http.MethodGet, port, path, header, ""))
	if err != nil {
		return "error:" + err.Error()
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Sprintf("status:%d", resp.StatusCode)
	}
	return resp.Header.Get("X-Instance")
}

// newRequest is a request to port on loopback.
func newRequest(t testing.TB, method string, port int, path string, header map[string]string, body string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, fmt.Sprintf("http://127.0.0.1:%d%s", port, path), strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	return req
}

// routeCase is one request and the instance (or "status:N") that must
// answer it.
type routeCase struct {
	path   string
	header map[string]string
	want   string
}

// expectRoutes waits (at most 15s) until the first case is answered as
// wanted, so the rules are live, then checks every case three times.
func expectRoutes(t *testing.T, port int, cases []routeCase) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for c := cases[0]; route(t, port, c.path, c.header) != c.want; {
		if time.Now().After(deadline) {
			t.Fatalf("%s %v: %s, want %s within 15s", c.path, c.header, route(t, port, c.path, c.header), c.want)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, c := range cases {
		for range 3 {
			if got := route(t, port, c.path, c.header); got != c.want {
				t.Errorf("%s %v: answered by %s, want %s", c.path, c.header, got, c.want)
				break
			}
		}
	}
}

// routedApps declares an app with one backend per name (the backend's id
// is the app name) and web, with rules, on the returned port; it waits
// until every backend is live.
func routedApps(s *stack, rules string, names ...string) int {
	s.t.Helper()
	return routedAppsWith(s, "  rules:\n"+rules, names...)
}

// routedAppsWith is routedApps with web's spec lines after its
// external_port (extra) written out.
func routedAppsWith(s *stack, extra string, names ...string) int {
	s.t.Helper()
	for _, n := range names {
		b := startBackend(s.t, n)
		s.putApp(n, freePort(s.t), "")
		s.addBackend(n, b)
		s.waitLive(n, b.Port, true, 10*time.Second)
	}
	web := startBackend(s.t, "web")
	port := freePort(s.t)
	s.putApp("web", port, extra)
	s.addBackend("web", web)
	s.waitLive("web", web.Port, true, 10*time.Second)
	s.settle()
	return port
}

func TestPathPrefixExactAndRegexRulesReachTheRightApp(t *testing.T) {
	s := newStack(t)
	port := routedApps(s, `  - id: api
    target: api
    match: {path_type: prefix, path: /api/}
  - id: login
    target: auth
    match: {path_type: exact, path: /login}
  - id: images
    target: static
    match: {path_type: regex, path: '^/img/[a-z]+\.(png|jpe?g)$'}
  - id: ghost
    target: ghost
    match: {path: /ghost}
`, "api", "auth", "static")
	expectRoutes(t, port, []routeCase{
		{"/api/users", nil, "api"},
		{"/api/", nil, "api"},
		{"/api", nil, "web"},
		{"/apix/", nil, "web"},
		{"/login", nil, "auth"},
		{"/login/", nil, "web"},
		{"/login?next=/x", nil, "auth"},
		{"/img/cat.png", nil, "static"},
		{"/img/cat.jpeg", nil, "static"},
		{"/img/cat.gif", nil, "web"},
		{"/img/Cat.png", nil, "web"},
		{"/img/a/cat.png", nil, "web"},
		{"/", nil, "web"},
		{"/ghost/x", nil, "status:503"},
	})
}

func TestHeaderExactRegexAndExistsRulesReachTheRightApp(t *testing.T) {
	s := newStack(t)
	port := routedApps(s, `  - id: env
    target: canary
    match:
      headers: [{name: X-Env, value: canary}]
  - id: agent
    target: beta
    match:
      headers: [{name: User-Agent, type: regex, value: '^beta-client/[0-9]+$'}]
  - id: feature
    target: beta
    match:
      path: /feature
      headers: [{name: X-Feature, type: exists}]
  - id: both
    target: canary
    priority: 5
    match:
      path: /both
      headers: [{name: X-A, value: "1"}, {name: X-B, type: regex, value: '^ok'}]
`, "canary", "beta")
	expectRoutes(t, port, []routeCase{
		{"/", map[string]string{"X-Env": "canary"}, "canary"},
		{"/", nil, "web"},
		{"/", map[string]string{"X-Env": "Canary"}, "web"},
		{"/", map[string]string{"X-Env": "canary2"}, "web"},
		{"/", map[string]string{"User-Agent": "beta-client/12"}, "beta"},
		{"/", map[string]string{"User-Agent": "beta-client/x"}, "web"},
		{"/feature", map[string]string{"X-Feature": "on"}, "beta"},
		{"/feature/deep", map[string]string{"X-Feature": "1"}, "beta"},
		{"/feature", nil, "web"},
		{"/other", map[string]string{"X-Feature": "on"}, "web"},
		{"/both", map[string]string{"X-A": "1", "X-B": "okay"}, "canary"},
		{"/both", map[string]string{"X-A": "1"}, "web"},
		{"/both", map[string]string{"X-B": "okay"}, "web"},
		{"/both", map[string]string{"X-A": "1", "X-B": "nok"}, "web"},
	})
}

func TestTheHighestPriorityMatchingRuleWinsAndDisabledRulesAreIgnored(t *testing.T) {
	s := newStack(t)
	port := routedApps(s, `  - id: broad
    target: a
    priority: 1
    match: {path: /shop/}
  - id: narrow
    target: b
    priority: 10
    match: {path_type: regex, path: '^/shop/cart'}
  - id: vip
    target: c
    priority: 20
    match:
      path: /shop/cart
      headers: [{name: X-Vip, value: "yes"}]
  - id: special
    target: c
    match: {path_type: exact, path: /shop/special}
  - id: disabled
    target: c
    priority: 100
    enabled: false
    match: {path: /}
  - id: tie-b
    target: b
    priority: 5
    match: {path: /tie}
  - id: tie-a
    target: a
    priority: 5
    match: {path: /tie}
`, "a", "b", "c")
	expectRoutes(t, port, []routeCase{
		{"/shop/cart", nil, "b"},
		{"/shop/cart/items", nil, "b"},
		{"/shop/cart", map[string]string{"X-Vip": "yes"}, "c"},
		{"/shop/cart", map[string]string{"X-Vip": "no"}, "b"},
		{"/shop/x", nil, "a"},
		{"/shop/special", nil, "a"}, // a lower-priority exact rule does not beat a prefix
		{"/tie", nil, "a"},
		{"/", nil, "web"},
		{"/other", nil, "web"},
	})
}

func TestAHostileRuleIsRefusedWith422NamingTheFieldAndNothingIsStored(t *testing.T) {
	s := newStack(t)
	port := freePort(t)
	for _, c := range []struct{ name, rules, field string }{
		{"path", "  - id: x\n    match: {path: '/a;} server {'}\n", "spec.rules[0].match.path"},
		{"regex quote", "  - id: x\n    match: {path_type: regex, path: '^/a\" 1; default \"'}\n", "spec.rules[0].match.path"},
		{"header regex", "  - id: x\n    match:\n      headers: [{name: X-A, type: regex, value: 'a{'}]\n", "spec.rules[0].match.headers[0].value"},
		{"header value", "  - id: x\n    match:\n      headers: [{name: X-A, value: '$host'}]\n", "spec.rules[0].match.headers[0].value"},
		{"target", "  - id: x\n    target: 'a; proxy_pass http://evil'\n", "spec.rules[0].target"},
		{"split target", "  - id: x\n    split: {target: 'a; return 200', percent: 20}\n", "spec.rules[0].split.target"},
		{"split percent", "  - id: x\n    split: {target: b, percent: 100}\n", "spec.rules[0].split.percent"},
		{"split cookie", "  - id: x\n    split: {target: b, percent: 20, sticky: {cookie: 'a=1; $host'}}\n", "spec.rules[0].split.sticky.cookie"},
		{"rule header", "  - id: x\n    headers: {X-A: 'v\" always; lua_code_cache off; \"'}\n", "spec.rules[0].headers.X-A"},
		{"rule body size", "  - id: x\n    max_body_size: '1m; include /etc/passwd'\n", "spec.rules[0].max_body_size"},
		{"rule rate", "  - id: x\n    rate_limit: {requests_per_second: '5r/s; limit_req_zone'}\n", "spec.rules[0].rate_limit.requests_per_second"},
	} {
		t.Run(c.name, func(t *testing.T) {
			body := fmt.Sprintf("apiVersion: v1\nkind: App\nmetadata:\n  name: evil\nspec:\n  networking:\n    external_port: %d\n  rules:\n%s", port, c.rules)
			code, out := s.do(http.MethodPut, "/v1/apps/evil", "application/yaml", body)
			if code != http.StatusUnprocessableEntity || !strings.Contains(out, c.field) {
				t.Fatalf("PUT hostile rule: %d %s; want 422 naming %s", code, out, c.field)
			}
			if code, out := s.do(http.MethodGet, "/v1/apps/evil", "", ""); code != http.StatusNotFound {
				t.Fatalf("GET after the refused PUT: %d %s; want 404", code, out)
			}
		})
	}
	if conf := s.readFile("live/apps/evil.conf"); conf != "" {
		t.Fatalf("a config was rendered for the refused app:\n%s", conf)
	}
}
