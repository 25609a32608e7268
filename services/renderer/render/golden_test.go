package render

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/orchestry/orchestry/pkg/events"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

func goldenCases() map[string][]events.RoutingState {
	three := []events.Instance{inst("web-2", "10.0.0.2", 8080), inst("web-1", "10.0.0.1", 8080), {ID: "web-3", IP: "10.0.0.3", Port: 8081, Weight: 5}}
	hash := func(key string) []events.RoutingState {
		return []events.RoutingState{state("api", events.AppSpec{LBMethod: events.LBHash, HashKey: key, Networking: events.Networking{Domain: "api.example.com"}}, three...)}
	}
	return map[string][]events.RoutingState{
		"round_robin": {state("web", events.AppSpec{LBMethod: events.LBRoundRobin, Networking: events.Networking{
			Domain: "web.example.com", MaxBodySize: "10m", Timeout: 30,
			Headers: map[string]string{"X-Frame-Options": "DENY", "Cache-Control": "no-store, max-age=0", "X-Note": "#not a comment"},
		}}, three...)},
		"least_conn":            {state("web", events.AppSpec{LBMethod: events.LBLeastConn, Networking: events.Networking{Domain: "web.example.com", Timeout: 2.5}}, three...)},
		"ip_hash":               {state("web", events.AppSpec{LBMethod: events.LBIPHash, Networking: events.Networking{ExternalPort: 8080}}, three...)},
		"hash_request_uri":      hash("request_uri"),
		"hash_remote_addr":      hash("remote_addr"),
		"hash_header":           hash("header:X-Tenant-Id"),
		"hash_cookie":           hash("cookie:session_id"),
		"hash_cookie_dash":      hash("cookie:my-session"),
		"random_two_least_conn": {state("web", events.AppSpec{LBMethod: events.LBRandomTwoLeastConn, Networking: events.Networking{Domain: "web.example.com"}}, three...)},
		"auto_leftover":         {state("web", events.AppSpec{LBMethod: events.LBAuto}, three...)},
		"ssl": {state("secure", events.AppSpec{Networking: events.Networking{ExternalPort: 8443, Domain: "secure.example.com", SSL: events.SSL{Enabled: true},
			Headers: map[string]string{"Strict-Transport-Security": "max-age=31536000"}}}, three...)},
		"ssl_hsts_redirect": {state("secure", events.AppSpec{Networking: events.Networking{Domain: "secure.example.com",
			SSL: events.SSL{Enabled: true, HSTS: true, RedirectHTTP: true}}}, three...)},
		"ssl_redirect_port": {state("secure", events.AppSpec{Networking: events.Networking{ExternalPort: 8443, Domain: "secure.example.com",
			SSL: events.SSL{Enabled: true, RedirectHTTP: true}}}, three...)},
		"no_instances": {state("idle", events.AppSpec{Networking: events.Networking{Domain: "idle.example.com"}})},
		"shared_port": {
			state("blog", events.AppSpec{Networking: events.Networking{ExternalPort: 8080, Domain: "blog.example.com"}}, inst("b1", "10.0.1.1", 3000)),
			state("shop", events.AppSpec{LBMethod: events.LBLeastConn, Networking: events.Networking{ExternalPort: 8080, Domain: "shop.example.com"}}, inst("s1", "10.0.2.1", 3000)),
		},
		"backup": {state("web", events.AppSpec{Networking: events.Networking{Domain: "web.example.com"}},
			inst("a", "10.0.0.1", 8080), events.Instance{ID: "b", IP: "10.0.0.2", Port: 8080, Backup: true})},
		"backup_only": {state("web", events.AppSpec{Networking: events.Networking{Domain: "web.example.com"}},
			events.Instance{ID: "b", IP: "10.0.0.2", Port: 8080, Backup: true})},
		"backup_hash": {state("api", events.AppSpec{LBMethod: events.LBHash, HashKey: "request_uri"},
			inst("a", "10.0.0.1", 8080), events.Instance{ID: "b", IP: "10.0.0.2", Port: 8080, Backup: true})},
		"limits_and_retries": {state("shop", events.AppSpec{Networking: events.Networking{Domain: "shop.example.com"},
			Retries:   &events.Retries{Conditions: []string{"error", "timeout", "http_502", "http_503", "non_idempotent"}, Tries: 3, Timeout: 2.5},
			RateLimit: &events.RateLimit{RequestsPerSecond: 20, Burst: 10}, ConnLimit: 5}, three...)},
		"limits_no_instances": {state("idle", events.AppSpec{RateLimit: &events.RateLimit{RequestsPerSecond: 1}, ConnLimit: 1})},
		"retries_off":         {state("web", events.AppSpec{Retries: &events.Retries{Conditions: []string{"off"}}}, three...)},
		"rules_paths": {
			state("web", events.AppSpec{Networking: events.Networking{Domain: "web.example.com"}, Rules: []events.Rule{
				{ID: "api", Target: "api", Match: events.RuleMatch{PathType: events.MatchPrefix, Path: "/api/v1.0+(beta)"}},
				{ID: "login", Target: "auth", Priority: 10, Match: events.RuleMatch{PathType: events.MatchExact, Path: "/login"}},
				{ID: "images", Target: "static", Priority: 5, Match: events.RuleMatch{PathType: events.MatchRegex, Path: `^/img/[a-z0-9_-]{1,64}\.(png|jpe?g)$`}},
				{ID: "self", Priority: -1, Match: events.RuleMatch{Path: "/api/internal"}},
			}}, inst("w1", "10.0.0.1", 8080)),
			state("api", events.AppSpec{}, inst("a1", "10.0.1.1", 8080)),
			state("auth", events.AppSpec{}, inst("u1", "10.0.2.1", 8080)),
		},
		"rules_headers": {
			state("web", events.AppSpec{Rules: []events.Rule{
				{ID: "canary", Target: "canary", Priority: 3, Match: events.RuleMatch{Headers: []events.HeaderMatch{{Name: "X-Canary", Type: events.MatchExists}}}},
				{ID: "tenant", Target: "canary", Priority: 2, Match: events.RuleMatch{Path: "/t", Headers: []events.HeaderMatch{
					{Name: "X-Tenant", Value: "acme [eu] #1"}, {Name: "User-Agent", Type: events.MatchRegex, Value: `^Mozilla/[0-9]+\.[0-9]+`}}}},
				{ID: "off", Target: "canary", Priority: 9, Enabled: new(false), Match: events.RuleMatch{Path: "/"}},
				{ID: "all", Priority: 1},
				{ID: "never", Target: "canary"},
			}}, inst("w1", "10.0.0.1", 8080)),
			state("canary", events.AppSpec{}, inst("c1", "10.0.3.1", 8080)),
		},
		"rules_no_instances": {state("idle", events.AppSpec{RateLimit: &events.RateLimit{RequestsPerSecond: 5}, Rules: []events.Rule{
			{ID: "beta", Target: "beta", Match: events.RuleMatch{PathType: events.MatchExact, Path: "/beta"}},
		}})},
		"rules_split": {
			state("web", events.AppSpec{Networking: events.Networking{Domain: "web.example.com"}, Rules: []events.Rule{
				{ID: "ab", Priority: 4, Match: events.RuleMatch{Path: "/shop/"}, Split: &events.Split{Target: "canary", Percent: 20}},
				{ID: "cookie", Target: "stable", Priority: 3, Match: events.RuleMatch{Path: "/app/"},
					Split: &events.Split{Target: "canary", Percent: 12.5, Sticky: &events.Sticky{Cookie: "session_id"}}},
				{ID: "cookie-dash", Target: "stable", Priority: 2, Match: events.RuleMatch{PathType: events.MatchExact, Path: "/beta"},
					Split: &events.Split{Target: "canary", Percent: 0.01, Sticky: &events.Sticky{Cookie: "my-session"}}},
				{ID: "header", Priority: 1, Match: events.RuleMatch{Headers: []events.HeaderMatch{{Name: "X-Tenant", Type: events.MatchExists}}},
					Split: &events.Split{Target: "ghost", Percent: 99.99, Sticky: &events.Sticky{Header: "X-User-Id"}}},
				{ID: "off", Enabled: new(false), Split: &events.Split{Target: "canary", Percent: 50}},
			}}, inst("w1", "10.0.0.1", 8080)),
			state("canary", events.AppSpec{}, inst("c1", "10.0.3.1", 8080)),
			state("stable", events.AppSpec{}, inst("s1", "10.0.4.1", 8080)),
		},
		"rules_settings": {
			state("web", events.AppSpec{
				Networking: events.Networking{Domain: "web.example.com", SSL: events.SSL{Enabled: true, HSTS: true},
					Headers: map[string]string{"X-Frame-Options": "DENY", "Cache-Control": "no-store"}},
				RateLimit: &events.RateLimit{RequestsPerSecond: 100, Burst: 50}, ConnLimit: 20,
				Rules: []events.Rule{
					{ID: "upload", Target: "api", Priority: 5, Match: events.RuleMatch{PathType: events.MatchPrefix, Path: "/upload/"},
						MaxBodySize: "100m", Timeout: 300, RateLimit: &events.RateLimit{RequestsPerSecond: 2}},
					{ID: "static", Priority: 4, Match: events.RuleMatch{Path: "/static/"},
						Headers: map[string]string{"cache-control": "public, max-age=86400", "X-Served-By": "static rule"}},
					{ID: "canary", Priority: 3, Match: events.RuleMatch{Path: "/shop/"}, Timeout: 2.5,
						Split: &events.Split{Target: "ghost", Percent: 10}},
					{ID: "plain", Target: "api", Priority: 2, Match: events.RuleMatch{Path: "/api/"}},
				}}, inst("w1", "10.0.0.1", 8080)),
			state("api", events.AppSpec{}, inst("a1", "10.0.1.1", 8080)),
		},
		"auto_latency_weights": {func() events.RoutingState {
			s := state("web", events.AppSpec{LBMethod: events.LBLeastConn}, inst("fast", "10.0.0.1", 80), inst("mid", "10.0.0.2", 80), inst("slow", "10.0.0.3", 80))
			s.Auto = &events.AutoChoice{Method: events.LBLeastConn, Weights: map[string]int{"mid": 3, "slow": 1}, Reason: "test"}
			return s
		}()},
		"acme_challenges": {
			state("plain", events.AppSpec{Networking: events.Networking{Domain: "www.example.com"}}, inst("p1", "10.0.0.1", 8080)),
			state("redirecting", events.AppSpec{Networking: events.Networking{Domain: "r.example.com", SSL: events.SSL{Enabled: true, RedirectHTTP: true}}}, inst("r1", "10.0.0.2", 8080)),
			state("tls-only", events.AppSpec{Networking: events.Networking{Domain: "t.example.com", SSL: events.SSL{Enabled: true}}}, inst("t1", "10.0.0.3", 8080)),
			state("tls-shared", events.AppSpec{Networking: events.Networking{Domain: "www.example.com", SSL: events.SSL{Enabled: true}}}, inst("s1", "10.0.0.4", 8080)),
		},
		"load_bands": {state("web", events.AppSpec{MaxConns: 100}, events.Instance{ID: "a", IP: "10.0.0.1", Port: 80, LoadBand: 1},
			events.Instance{ID: "b", IP: "10.0.0.2", Port: 80, Weight: 2, LoadBand: 4}, events.Instance{ID: "c", IP: "10.0.0.3", Port: 80})},
		"ipv6": {state("v6", events.AppSpec{Networking: events.Networking{Domain: "v6.example.com"}},
			inst("a", "2001:db8::1", 8080), inst("b", "::ffff:10.0.0.9", 8080), inst("c", "10.0.0.1", 9090))},
	}
}

// serialize joins the files of a render, sorted by name, with its version files.
func serialize(cfg Config) []byte {
	files := VersionFiles(42)
	for k, v := range cfg.Files {
		files[k] = v
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	var b bytes.Buffer
	for _, n := range names {
		b.WriteString("# ==> " + n + " <==\n")
		b.Write(files[n])
	}
	return b.Bytes()
}

func TestGolden(t *testing.T) {
	for name, states := range goldenCases() {
		t.Run(name, func(t *testing.T) {
			cfg, err := Render(states, testOpts())
			if err != nil {
				t.Fatalf("Render: %v", err)
			}
			got := serialize(cfg)
			path := filepath.Join("testdata", name+".golden")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./render/ -run TestGolden -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("render differs from %s (rerun with -update if intended):\n%s", path, got)
			}
			if err := checkParsed(cfg, states); err != nil {
				t.Errorf("parse-back: %v", err)
			}
			nginxTest(t, states, "127.0.0.1:5514")
		})
	}
}

// TestNginxAllTogether runs nginx -t on every golden case at once, so that
// apps with different methods, TLS and shared ports coexist.
func TestNginxAllTogether(t *testing.T) {
	var all []events.RoutingState
	seen := map[string]bool{}
	for _, states := range goldenCases() {
		for _, s := range states {
			if seen[s.App.Metadata.Name] {
				continue
			}
			seen[s.App.Metadata.Name] = true
			all = append(all, s)
		}
	}
	nginxTest(t, all, "")
}
