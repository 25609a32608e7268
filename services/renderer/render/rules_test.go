package render

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/orchestry/orchestry/pkg/events"
)

// ruleRegexes are accepted by events.CheckRegex; NGINX's PCRE must accept
// each of them too, as a path and as a header regex.
var ruleRegexes = []string{
	`^/api/`, `\.php$`, `^/img/[a-z0-9_-]+\.(png|jpe?g|gif)$`, `^/v[0-9]{1,3}/`, `^/a{2,}b{3}$`,
	`(?:foo|bar)+`, `^/[[:alpha:]]+/\d+\w*\s?$`, `^/x\/y\-z\+\*\?\(\)\[\]\|\^`, `[^/]+$`, `^Mozilla/[0-9]+\.[0-9]+`,
	`a|b|`, `~tilde`, `%20&=:@!,`, `^(a|b(c|d)+)*?$`, `[\d\w\-.]{999}`,
}

func TestRuleRegexesPassNginx(t *testing.T) {
	var rules []events.Rule
	for i, re := range ruleRegexes {
		if err := events.CheckRegex(re); err != nil {
			t.Fatalf("%q: %v", re, err)
		}
		rules = append(rules,
			events.Rule{ID: fmt.Sprintf("p%d", i), Match: events.RuleMatch{PathType: events.MatchRegex, Path: re}},
			events.Rule{ID: fmt.Sprintf("h%d", i), Match: events.RuleMatch{Headers: []events.HeaderMatch{{Name: "X-Re", Type: events.MatchRegex, Value: re}}}},
		)
	}
	states := []events.RoutingState{state("re", events.AppSpec{Rules: rules}, inst("i", "10.0.0.1", 80))}
	cfg, err := Render(states, testOpts())
	if err != nil {
		t.Fatal(err)
	}
	if err := checkParsed(cfg, states); err != nil {
		t.Fatal(err)
	}
	nginxTest(t, states, "")
}

func TestRenderRefusesHostileRules(t *testing.T) {
	for _, c := range []struct {
		name, field string
		rule        events.Rule
	}{
		{"path closes block", "spec.rules[0].match.path", events.Rule{ID: "a", Match: events.RuleMatch{Path: "/a;} server {"}}},
		{"path newline", "spec.rules[0].match.path", events.Rule{ID: "a", Match: events.RuleMatch{Path: "/a\ninclude /etc/passwd;"}}},
		{"path variable", "spec.rules[0].match.path", events.Rule{ID: "a", Match: events.RuleMatch{PathType: "exact", Path: "/${uri}"}}},
		{"regex quote", "spec.rules[0].match.path", events.Rule{ID: "a", Match: events.RuleMatch{PathType: "regex", Path: `^/a" 1; default "`}}},
		{"regex brace", "spec.rules[0].match.path", events.Rule{ID: "a", Match: events.RuleMatch{PathType: "regex", Path: `^/a} lua_code {`}}},
		{"regex comment", "spec.rules[0].match.path", events.Rule{ID: "a", Match: events.RuleMatch{PathType: "regex", Path: `^/a#`}}},
		{"regex backslash quote", "spec.rules[0].match.path", events.Rule{ID: "a", Match: events.RuleMatch{PathType: "regex", Path: `^/a\"`}}},
		{"regex variable", "spec.rules[0].match.path", events.Rule{ID: "a", Match: events.RuleMatch{PathType: "regex", Path: `$host`}}},
		{"regex line separator", "spec.rules[0].match.path", events.Rule{ID: "a", Match: events.RuleMatch{PathType: "regex", Path: "^/a\u2028"}}},
		{"header regex", "spec.rules[0].match.headers[0].value", events.Rule{ID: "a", Match: events.RuleMatch{Headers: []events.HeaderMatch{{Name: "X", Type: "regex", Value: "a;b"}}}}},
		{"header exact", "spec.rules[0].match.headers[0].value", events.Rule{ID: "a", Match: events.RuleMatch{Headers: []events.HeaderMatch{{Name: "X", Value: `a" 1; "`}}}}},
		{"header name", "spec.rules[0].match.headers[0].name", events.Rule{ID: "a", Match: events.RuleMatch{Headers: []events.HeaderMatch{{Name: "X;ssl_engine", Type: "exists"}}}}},
		{"target", "spec.rules[0].target", events.Rule{ID: "a", Target: "x; proxy_pass http://evil"}},
		{"id", "spec.rules[0].id", events.Rule{ID: "a_b"}},
		{"split target", "spec.rules[0].split.target", events.Rule{ID: "a", Split: &events.Split{Target: "x; return 200", Percent: 5}}},
		{"split percent", "spec.rules[0].split.percent", events.Rule{ID: "a", Split: &events.Split{Target: "b", Percent: 100}}},
		{"split cookie", "spec.rules[0].split.sticky.cookie", events.Rule{ID: "a", Split: &events.Split{Target: "b", Percent: 5,
			Sticky: &events.Sticky{Cookie: "a=([^;]+)\" 1; default \"$host"}}}},
		{"split header", "spec.rules[0].split.sticky.header", events.Rule{ID: "a", Split: &events.Split{Target: "b", Percent: 5,
			Sticky: &events.Sticky{Header: "X-A $host"}}}},
		{"rule header value", "spec.rules[0].headers.X-A", events.Rule{ID: "a", Headers: map[string]string{"X-A": "v; lua_code_cache off"}}},
		{"rule header variable", "spec.rules[0].headers.X-A", events.Rule{ID: "a", Headers: map[string]string{"X-A": "$ssl_client_cert"}}},
		{"rule header name", "spec.rules[0].headers", events.Rule{ID: "a", Headers: map[string]string{"X-A always; ssl_engine x": "v"}}},
		{"rule body size", "spec.rules[0].max_body_size", events.Rule{ID: "a", MaxBodySize: "1m; include /etc/passwd"}},
		{"rule timeout", "spec.rules[0].timeout", events.Rule{ID: "a", Timeout: -1}},
		{"rule rate", "spec.rules[0].rate_limit.requests_per_second", events.Rule{ID: "a", RateLimit: &events.RateLimit{}}},
		{"rule burst", "spec.rules[0].rate_limit.burst", events.Rule{ID: "a", RateLimit: &events.RateLimit{RequestsPerSecond: 1, Burst: -1}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := state("web", events.AppSpec{Rules: []events.Rule{c.rule}}, inst("i1", "10.0.0.1", 8080))
			_, err := Render([]events.RoutingState{s}, testOpts())
			if err == nil || !strings.Contains(err.Error(), c.field) || !strings.HasPrefix(err.Error(), "render ") {
				t.Fatalf("error %v, want one naming %s", err, c.field)
			}
		})
	}
}

func FuzzRenderRules(f *testing.F) {
	f.Add("prefix", "/a;} server {", "X-A", "exact", `a" 1; default "`, "other", 3)
	f.Add("regex", `^/a\.b{1,2}$`, "X-A", "regex", `^(?:x|y)\d`, "", 0)
	f.Add("regex", "^/a\n}", "X-A", "exists", "", "web", -1)
	f.Add("exact", "/${uri}", "X;a", "regex", `\"`, "a b", 1)
	f.Add("regex", `#{`, "X-A", "regex", `(?=a)$x`, "", 2)
	f.Fuzz(func(t *testing.T, pathType, path, hname, htype, hval, target string, prio int) {
		s := state("fz", events.AppSpec{Rules: []events.Rule{
			{ID: "r1", Target: target, Priority: prio, Match: events.RuleMatch{PathType: pathType, Path: path,
				Headers: []events.HeaderMatch{{Name: hname, Type: htype, Value: hval}}}},
			{ID: "r2", Match: events.RuleMatch{PathType: pathType, Path: path}},
		}}, events.Instance{ID: "i1", IP: "10.0.0.1", Port: 80})
		renderChecked(t, s)
	})
}

func FuzzRenderRuleSettings(f *testing.F) {
	f.Add("upload", "X-A", "v", "10m", 30.0, 5, 0, "/up")
	f.Add("a b", "X-A", `v"; return 200 "x`, "1m;", 0.001, 0, 1, "/a")
	f.Add("x", "X-A;}", "#c", "1g", 3600.0, 100000, 100000, "/")
	f.Add("x", "Strict-Transport-Security", "max-age=1", "", 0.0, 1, -1, "")
	f.Add("x", "X", "a\nb", "5k", -1.0, 1, 1, "/${uri}")
	f.Fuzz(func(t *testing.T, id, hname, hval, size string, timeout float64, rps, burst int, path string) {
		r := events.Rule{ID: id, Match: events.RuleMatch{Path: path}, Headers: map[string]string{hname: hval},
			MaxBodySize: size, Timeout: timeout}
		if rps != 0 {
			r.RateLimit = &events.RateLimit{RequestsPerSecond: rps, Burst: burst}
		}
		s := state("fz", events.AppSpec{Networking: events.Networking{SSL: events.SSL{Enabled: true, HSTS: true}, Domain: "x.io",
			Headers: map[string]string{"X-A": "app"}}, Rules: []events.Rule{r, {ID: "r2", Timeout: 1}}},
			events.Instance{ID: "i1", IP: "10.0.0.1", Port: 80})
		renderChecked(t, s)
	})
}

func FuzzRenderSplit(f *testing.F) {
	f.Add("canary", 20.0, "", "", "")
	f.Add("canary", 12.5, "my-session", "", "web")
	f.Add("b; return 200", 0.001, "a=1\"; x", "X-A", "")
	f.Add("b", 99.99, "", "X-User;}", "b")
	f.Add("b", 100.0, "$host", "", "a\n}")
	f.Fuzz(func(t *testing.T, target string, percent float64, cookie, header, ruleTarget string) {
		sp := &events.Split{Target: target, Percent: percent}
		if cookie != "" || header != "" {
			sp.Sticky = &events.Sticky{Cookie: cookie, Header: header}
		}
		s := state("fz", events.AppSpec{Rules: []events.Rule{
			{ID: "r1", Target: ruleTarget, Match: events.RuleMatch{Path: "/a"}, Split: sp},
			{ID: "r2", Split: sp},
		}}, events.Instance{ID: "i1", IP: "10.0.0.1", Port: 80})
		renderChecked(t, s)
	})
}

// TestSplitsPassNginx runs nginx -t over splits of every shape and share
// step, several in one app.
func TestSplitsPassNginx(t *testing.T) {
	var rules []events.Rule
	for i, p := range []float64{0.01, 0.1, 1, 12.34, 33.3, 50, 99, 99.99} {
		stickies := []*events.Sticky{nil, {Cookie: "sid"}, {Cookie: "my-sid_2"}, {Header: "X-User-Id"}}
		rules = append(rules, events.Rule{ID: fmt.Sprintf("s%d", i), Target: "b", Priority: -i,
			Match: events.RuleMatch{Path: fmt.Sprintf("/s%d", i)}, Split: &events.Split{Target: "c", Percent: p, Sticky: stickies[i%len(stickies)]}})
	}
	states := []events.RoutingState{
		state("a", events.AppSpec{Rules: rules}, inst("i", "10.0.0.1", 80)),
		state("b", events.AppSpec{}, inst("i", "10.0.0.2", 80)),
		state("c", events.AppSpec{}, inst("i", "10.0.0.3", 80)),
	}
	cfg, err := Render(states, testOpts())
	if err != nil {
		t.Fatal(err)
	}
	if err := checkParsed(cfg, states); err != nil {
		t.Fatal(err)
	}
	nginxTest(t, states, "")
}

// TestAcceptedRegexesCompileInNginx is a differential check of the regex
// grammar: random regexes over the tokens it knows, and every one that
// events.CheckRegex accepts must compile in NGINX's PCRE too (one nginx -t
// over a map holding them all).
func TestAcceptedRegexesCompileInNginx(t *testing.T) {
	bin := nginxBinary(t)
	tokens := []string{"a", "Z", "0", "/", ".", "-", "_", "~", ":", "=", "@", "!", ",", "%", "&", "^", "$", "|", "(", ")", "(?:",
		"[", "]", "[^", "*", "+", "?", "{2}", "{1,3}", "{0,}", `\d`, `\w`, `\s`, `\D`, `\.`, `\-`, `\/`, `\[`, `\]`, `\(`, `\^`, `\*`,
		"[[:alpha:]]", "[:digit:]", "[.", "[=", "a-z", `\d-`, `-\w`}
	rng := rand.New(rand.NewPCG(1, 2))
	var accepted []string
	for len(accepted) < 10000 {
		var sb strings.Builder
		for range 1 + rng.IntN(10) {
			sb.WriteString(tokens[rng.IntN(len(tokens))])
		}
		if events.CheckRegex(sb.String()) == nil {
			accepted = append(accepted, sb.String())
		}
	}
	var conf strings.Builder
	dir := t.TempDir()
	fmt.Fprintf(&conf, "error_log %s/error.log;\npid %s/nginx.pid;\nevents {}\nhttp {\n    map $uri $x {\n", dir, dir)
	for _, re := range accepted {
		fmt.Fprintf(&conf, "        %s 1;\n", quoteArg("~"+re))
	}
	fmt.Fprintf(&conf, "        default 0;\n    }\n    server {\n        listen 127.0.0.1:1;\n        location / { return 200 $x; }\n    }\n}\n")
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "-t", "-q", "-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", path).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t refused a regex events.CheckRegex accepts: %v\n%s", err, out)
	}
	t.Logf("%d accepted regexes compile in NGINX", len(accepted))
}
