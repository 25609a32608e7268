package events_test

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/orchestry/orchestry/pkg/events"
)

func TestRuleValidation(t *testing.T) {
	off := false
	ok := events.Rule{ID: "r", Match: events.RuleMatch{Path: "/api"}}
	with := func(mut func(*events.Rule)) []events.Rule {
		r := ok
		mut(&r)
		return []events.Rule{r}
	}
	many := func(n int) []events.Rule {
		out := make([]events.Rule, n)
		for i := range out {
			out[i] = events.Rule{ID: fmt.Sprintf("r%d", i)}
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		rules []events.Rule
		field string // "" means valid
	}{
		{"prefix", with(func(r *events.Rule) {}), ""},
		{"catch-all", []events.Rule{{ID: "all"}}, ""},
		{"full", []events.Rule{{ID: "a", Target: "api", Priority: -5, Enabled: &off, Match: events.RuleMatch{PathType: "regex", Path: `^/v[0-9]{1,3}/(users|items)/\d+$`,
			Headers: []events.HeaderMatch{{Name: "X-A", Value: "b c"}, {Name: "X-B", Type: "regex", Value: `^(?:a|b)\.c`}, {Name: "X-C", Type: "exists"}}}}}, ""},
		{"exact", with(func(r *events.Rule) { r.Match = events.RuleMatch{PathType: "exact", Path: "/login"} }), ""},
		{"settings", with(func(r *events.Rule) {
			r.RateLimit = &events.RateLimit{RequestsPerSecond: 5, Burst: 10}
			r.Headers = map[string]string{"Cache-Control": "no-store"}
			r.Timeout, r.MaxBodySize = 120, "100m"
		}), ""},
		{"rule rate", with(func(r *events.Rule) { r.RateLimit = &events.RateLimit{} }), "spec.rules[0].rate_limit.requests_per_second"},
		{"rule burst", with(func(r *events.Rule) { r.RateLimit = &events.RateLimit{RequestsPerSecond: 1, Burst: 100001} }), "spec.rules[0].rate_limit.burst"},
		{"rule header value", with(func(r *events.Rule) { r.Headers = map[string]string{"X-A": "a; b"} }), "spec.rules[0].headers.X-A"},
		{"rule header name", with(func(r *events.Rule) { r.Headers = map[string]string{"X A": "v"} }), `spec.rules[0].headers."X A"`},
		{"rule timeout", with(func(r *events.Rule) { r.Timeout = 3601 }), "spec.rules[0].timeout"},
		{"rule body size", with(func(r *events.Rule) { r.MaxBodySize = "1t" }), "spec.rules[0].max_body_size"},
		{"64 rules", many(64), ""},
		{"65 rules", many(65), "spec.rules"},
		{"bad id", with(func(r *events.Rule) { r.ID = "A b" }), "spec.rules[0].id"},
		{"duplicate id", []events.Rule{ok, ok}, "spec.rules[1].id"},
		{"bad target", with(func(r *events.Rule) { r.Target = "app_x" }), "spec.rules[0].target"},
		{"priority", with(func(r *events.Rule) { r.Priority = 1 << 40 }), "spec.rules[0].priority"},
		{"path type", with(func(r *events.Rule) { r.Match.PathType = "glob" }), "spec.rules[0].match.path_type"},
		{"relative path", with(func(r *events.Rule) { r.Match.Path = "api" }), "spec.rules[0].match.path"},
		{"path injection", with(func(r *events.Rule) { r.Match.Path = "/a;} server {" }), "spec.rules[0].match.path"},
		{"path space", with(func(r *events.Rule) { r.Match.Path = "/a b" }), "spec.rules[0].match.path"},
		{"path dollar", with(func(r *events.Rule) { r.Match.Path = "/$uri" }), "spec.rules[0].match.path"},
		{"path quote", with(func(r *events.Rule) { r.Match.Path = `/a"` }), "spec.rules[0].match.path"},
		{"path too long", with(func(r *events.Rule) { r.Match.Path = "/" + strings.Repeat("a", 1000) }), "spec.rules[0].match.path"},
		{"exact empty", with(func(r *events.Rule) { r.Match = events.RuleMatch{PathType: "exact"} }), "spec.rules[0].match.path"},
		{"regex empty", with(func(r *events.Rule) { r.Match = events.RuleMatch{PathType: "regex"} }), "spec.rules[0].match.path"},
		{"regex quote", with(func(r *events.Rule) { r.Match = events.RuleMatch{PathType: "regex", Path: `^/a"`} }), "spec.rules[0].match.path"},
		{"header name", with(func(r *events.Rule) { r.Match.Headers = []events.HeaderMatch{{Name: "X A", Value: "v"}} }), "spec.rules[0].match.headers[0].name"},
		{"header duplicate", with(func(r *events.Rule) {
			r.Match.Headers = []events.HeaderMatch{{Name: "X-A", Value: "v"}, {Name: "x-a", Type: "exists"}}
		}), "spec.rules[0].match.headers[1].name"},
		{"header value", with(func(r *events.Rule) { r.Match.Headers = []events.HeaderMatch{{Name: "X-A", Value: "a;b"}} }), "spec.rules[0].match.headers[0].value"},
		{"header exact empty", with(func(r *events.Rule) { r.Match.Headers = []events.HeaderMatch{{Name: "X-A"}} }), "spec.rules[0].match.headers[0].value"},
		{"header exists value", with(func(r *events.Rule) {
			r.Match.Headers = []events.HeaderMatch{{Name: "X-A", Type: "exists", Value: "x"}}
		}), "spec.rules[0].match.headers[0].value"},
		{"header type", with(func(r *events.Rule) {
			r.Match.Headers = []events.HeaderMatch{{Name: "X-A", Type: "prefix", Value: "x"}}
		}), "spec.rules[0].match.headers[0].type"},
		{"header regex", with(func(r *events.Rule) {
			r.Match.Headers = []events.HeaderMatch{{Name: "X-A", Type: "regex", Value: "a{"}}
		}), "spec.rules[0].match.headers[0].value"},
		{"split", with(func(r *events.Rule) { r.Split = &events.Split{Target: "canary", Percent: 20} }), ""},
		{"split fractional", with(func(r *events.Rule) { r.Split = &events.Split{Target: "canary", Percent: 0.29} }), ""},
		{"split 99.99", with(func(r *events.Rule) { r.Split = &events.Split{Target: "canary", Percent: 99.99} }), ""},
		{"split sticky cookie", with(func(r *events.Rule) {
			r.Target = "stable"
			r.Split = &events.Split{Target: "canary", Percent: 5, Sticky: &events.Sticky{Cookie: "my-session_1"}}
		}), ""},
		{"split sticky header", with(func(r *events.Rule) {
			r.Split = &events.Split{Target: "canary", Percent: 50, Sticky: &events.Sticky{Header: "X-User-Id"}}
		}), ""},
		{"split no target", with(func(r *events.Rule) { r.Split = &events.Split{Percent: 20} }), "spec.rules[0].split.target"},
		{"split bad target", with(func(r *events.Rule) { r.Split = &events.Split{Target: "a; proxy_pass x", Percent: 20} }), "spec.rules[0].split.target"},
		{"split own target", with(func(r *events.Rule) {
			r.Target = "api"
			r.Split = &events.Split{Target: "api", Percent: 20}
		}), "spec.rules[0].split.target"},
		{"split zero", with(func(r *events.Rule) { r.Split = &events.Split{Target: "canary"} }), "spec.rules[0].split.percent"},
		{"split negative", with(func(r *events.Rule) { r.Split = &events.Split{Target: "canary", Percent: -5} }), "spec.rules[0].split.percent"},
		{"split 100", with(func(r *events.Rule) { r.Split = &events.Split{Target: "canary", Percent: 100} }), "spec.rules[0].split.percent"},
		{"split over 100", with(func(r *events.Rule) { r.Split = &events.Split{Target: "canary", Percent: 150} }), "spec.rules[0].split.percent"},
		{"split three decimals", with(func(r *events.Rule) { r.Split = &events.Split{Target: "canary", Percent: 12.345} }), "spec.rules[0].split.percent"},
		{"split tiny", with(func(r *events.Rule) { r.Split = &events.Split{Target: "canary", Percent: 1e-9} }), "spec.rules[0].split.percent"},
		{"split almost 100", with(func(r *events.Rule) { r.Split = &events.Split{Target: "canary", Percent: 99.9999999999} }), "spec.rules[0].split.percent"},
		{"split NaN", with(func(r *events.Rule) { r.Split = &events.Split{Target: "canary", Percent: math.NaN()} }), "spec.rules[0].split.percent"},
		{"split sticky empty", with(func(r *events.Rule) { r.Split = &events.Split{Target: "canary", Percent: 20, Sticky: &events.Sticky{}} }), "spec.rules[0].split.sticky"},
		{"split sticky both", with(func(r *events.Rule) {
			r.Split = &events.Split{Target: "canary", Percent: 20, Sticky: &events.Sticky{Cookie: "a", Header: "X-A"}}
		}), "spec.rules[0].split.sticky"},
		{"split sticky cookie", with(func(r *events.Rule) {
			r.Split = &events.Split{Target: "canary", Percent: 20, Sticky: &events.Sticky{Cookie: "a=b; c"}}
		}), "spec.rules[0].split.sticky.cookie"},
		{"split sticky cookie variable", with(func(r *events.Rule) {
			r.Split = &events.Split{Target: "canary", Percent: 20, Sticky: &events.Sticky{Cookie: "$host"}}
		}), "spec.rules[0].split.sticky.cookie"},
		{"split sticky cookie long", with(func(r *events.Rule) {
			r.Split = &events.Split{Target: "canary", Percent: 20, Sticky: &events.Sticky{Cookie: strings.Repeat("c", 65)}}
		}), "spec.rules[0].split.sticky.cookie"},
		{"split sticky header", with(func(r *events.Rule) {
			r.Split = &events.Split{Target: "canary", Percent: 20, Sticky: &events.Sticky{Header: "X_A"}}
		}), "spec.rules[0].split.sticky.header"},
		{"9 headers", with(func(r *events.Rule) {
			for i := range 9 {
				r.Match.Headers = append(r.Match.Headers, events.HeaderMatch{Name: fmt.Sprintf("X-%d", i), Type: "exists"})
			}
		}), "spec.rules[0].match.headers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			app := events.App{Metadata: events.Metadata{Name: "web"}, Spec: events.AppSpec{Rules: tc.rules}}
			err := app.Validate()
			if tc.field == "" {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				return
			}
			var ve events.ValidationError
			if !errors.As(err, &ve) || len(ve) == 0 {
				t.Fatalf("accepted or not a ValidationError: %v", err)
			}
			if ve[0].Field != tc.field {
				t.Fatalf("field %q (%v), want %q", ve[0].Field, err, tc.field)
			}
		})
	}
}

// safeRegexes are accepted by CheckRegex (render's TestRuleRegexesPassNginx
// runs the same shapes through nginx -t).
var safeRegexes = []string{
	`^/api/`, `\.php$`, `^/img/[a-z0-9_-]+\.(png|jpe?g|gif)$`, `^/v[0-9]{1,3}/`, `^/a{2,}b{3}$`,
	`(?:foo|bar)+`, `^/[[:alpha:]]+/\d+\w*\s?$`, `^/x\/y\-z\+\*\?\(\)\[\]\|\^`, `[^/]+$`, `^Mozilla/[0-9]+\.[0-9]+`,
	`a|b|`, `~tilde`, `%20&=:@!,`,
}

func TestCheckRegex(t *testing.T) {
	for _, re := range safeRegexes {
		if err := events.CheckRegex(re); err != nil {
			t.Errorf("%q rejected: %v", re, err)
		}
	}
	for _, re := range []string{
		``, `a"b`, `a'b`, `a b`, "a\tb", "a\nb", `a;b`, `a#b`, `a}b`, `a{b`, `a{1,2`, `{2}`, `a{,2}`, `a{x}`, `$a`, `a$b`, `a\$`,
		`\x41`, `\Q.\E`, `\1`, `(a)\1`, `(?=a)`, `(?!a)`, `(?<=a)b`, `(?i)a`, `(?P<n>a)`, `a*+`, `a++`, `\pL`, `\z`, `a\`,
		`[]a]`, `[^]a]`, `*a`, `[[.a.]]`, `[[=a=]]`, `[:alpha:]`, `^*`, `(^+)`, `[\d-z]`, `[a-\w]`, `[a-[:digit:]]`, `[[:digit:]-z]`, `[a[]`, `(`, `[a-`, `${uri}`, `a` + strings.Repeat("b", 256), "\u2028", `a\u0041`,
	} {
		if err := events.CheckRegex(re); err == nil {
			t.Errorf("%q accepted", re)
		}
	}
}

func TestSplitPercentString(t *testing.T) {
	for p, want := range map[float64]string{20: "20", 0.29: "0.29", 12.5: "12.5", 99.99: "99.99", 0.01: "0.01", 33.3: "33.3"} {
		if err := events.CheckSplitPercent(p); err != nil {
			t.Errorf("%v rejected: %v", p, err)
		}
		if got := events.SplitPercentString(p); got != want {
			t.Errorf("%v: %q, want %q", p, got, want)
		}
	}
}
