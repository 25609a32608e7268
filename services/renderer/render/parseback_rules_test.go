package render

// Parse-back checks of the routing rules: their maps, split_clients and
// rule locations.

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"

	crossplane "github.com/nginxinc/nginx-go-crossplane"
	"github.com/orchestry/orchestry/pkg/events"
)

// checkRules checks the maps of the app's enabled rules: each path, regex
// and header value is exactly one map key, written as intended, and the
// traffic location proxies to the route variable.
func checkRules(file, srv crossplane.Directives, s events.RoutingState) error {
	va := strings.ReplaceAll(s.App.Metadata.Name, "-", "_")
	var rules []events.Rule
	for _, r := range s.App.Spec.Rules {
		if r.Enabled == nil || *r.Enabled {
			rules = append(rules, r)
		}
	}
	slices.SortStableFunc(rules, func(a, b events.Rule) int {
		if a.Priority != b.Priority {
			return b.Priority - a.Priority
		}
		return strings.Compare(a.ID, b.ID)
	})
	var ruleMaps []*crossplane.Directive
	byVar := map[string]*crossplane.Directive{}
	for _, m := range find(file, "map") {
		if isRuleMap(m) {
			ruleMaps = append(ruleMaps, m)
			byVar[m.Args[1]] = m
		}
	}
	var loc *crossplane.Directive
	for _, l := range find(srv, "location") {
		if slices.Equal(l.Args, []string{"/"}) {
			loc = l
		}
	}
	if loc == nil {
		return errors.New("no traffic location")
	}
	if len(rules) == 0 {
		if len(ruleMaps)+len(find(file, "split_clients")) != 0 {
			return fmt.Errorf("%d rule maps without enabled rules", len(ruleMaps))
		}
		return nil
	}
	if pp := find(loc.Block, "proxy_pass"); len(pp) != 1 {
		return errors.New("want one proxy_pass in the traffic location")
	} else if err := argsEqual(pp[0], "http://$orchestry_route_"+va); err != nil {
		return err
	}
	// want checks that map v tests source for exactly one key.
	want := func(source, v, key, on, off string) error {
		m := byVar[v]
		if m == nil {
			return fmt.Errorf("no map for %s", v)
		}
		if !slices.Equal(m.Args, []string{source, v}) {
			return fmt.Errorf("map %s args %q, want source %s", v, m.Args, source)
		}
		if len(m.Block) != 2 || nginxUnescape(m.Block[0].Directive) != key || !slices.Equal(m.Block[0].Args, []string{on}) ||
			m.Block[1].Directive != "default" || !slices.Equal(m.Block[1].Args, []string{off}) {
			return fmt.Errorf("map %s: entries %v, want %q %s and default %s", v, m.Block, key, on, off)
		}
		return nil
	}
	for i, r := range rules {
		p := fmt.Sprintf("$orchestry_r%d", i)
		m := r.Match
		always := len(m.Headers) == 0
		switch {
		case m.PathType == events.MatchRegex:
			always = false
			if err := want("$uri", p+"p_"+va, "~"+m.Path, "1", "0"); err != nil {
				return err
			}
		case m.PathType == events.MatchExact:
			always = false
			if err := want("$uri", p+"p_"+va, "~^"+regexp.QuoteMeta(m.Path)+`\z`, "1", "0"); err != nil {
				return err
			}
		case m.Path != "" && m.Path != "/":
			always = false
			if err := want("$uri", p+"p_"+va, "~^"+regexp.QuoteMeta(m.Path), "1", "0"); err != nil {
				return err
			}
		}
		for j, h := range m.Headers {
			v := fmt.Sprintf("%sh%d_%s", p, j, va)
			src := "$http_" + strings.ReplaceAll(strings.ToLower(h.Name), "-", "_")
			var err error
			switch h.Type {
			case events.MatchExists:
				err = want(src, v, "", "0", "1")
			case events.MatchRegex:
				err = want(src, v, "~"+h.Value, "1", "0")
			default:
				err = want(src, v, "~^"+regexp.QuoteMeta(h.Value)+`\z`, "1", "0")
			}
			if err != nil {
				return err
			}
		}
		if always {
			rules = rules[:i+1]
			break
		}
	}
	route := byVar["$orchestry_route_"+va]
	if route == nil {
		return errors.New("no route map")
	}
	if len(route.Block) != len(rules)+1 {
		return fmt.Errorf("route map has %d entries, want %d", len(route.Block), len(rules)+1)
	}
	splits := 0
	for i, r := range rules {
		t := r.Target
		if t == "" {
			t = s.App.Metadata.Name
		}
		value := "app_" + t
		if r.Split != nil {
			value = fmt.Sprintf("$orchestry_r%ds_%s", i, va)
			if err := checkSplit(file, byVar, value, fmt.Sprintf("$orchestry_r%dk_%s", i, va), r.Split, t); err != nil {
				return fmt.Errorf("rule %s: %w", r.ID, err)
			}
			splits++
		}
		e := route.Block[i]
		if nginxUnescape(e.Directive) != "~^"+strings.Repeat("0", i)+"1" || !slices.Equal(e.Args, []string{value}) {
			return fmt.Errorf("route entry %d: %s %q, want rule %s to %s", i, e.Directive, e.Args, r.ID, value)
		}
	}
	if got := len(find(file, "split_clients")); got != splits {
		return fmt.Errorf("%d split_clients, want %d", got, splits)
	}
	return checkRuleLocations(file, srv, loc, rules, s, byVar)
}

// checkRuleLocations checks the rule locations of the reachable rules
// with settings of their own: the pick map sends exactly those rules'
// requests there, and each location holds the rule's values, each as one
// argument, and proxies to the route variable.
func checkRuleLocations(file, srv crossplane.Directives, loc *crossplane.Directive, rules []events.Rule, s events.RoutingState, byVar map[string]*crossplane.Directive) error {
	app := s.App.Metadata.Name
	va := strings.ReplaceAll(app, "-", "_")
	pickVar := "$orchestry_pick_" + va
	var want []*crossplane.Directive
	for i, r := range rules {
		if r.HasSettings() {
			want = append(want, &crossplane.Directive{Directive: "~^" + strings.Repeat("0", i) + "1", Args: []string{"orchestry-rule-" + r.ID}})
		}
	}
	pick := byVar[pickVar]
	var rewrites []*crossplane.Directive
	for _, d := range find(loc.Block, "if") {
		if find(d.Block, "rewrite") != nil {
			rewrites = append(rewrites, d)
		}
	}
	if len(want) == 0 {
		if pick != nil || len(rewrites) != 0 {
			return errors.New("pick map or rewrite without rule settings")
		}
		return nil
	}
	if pick == nil || len(pick.Block) != len(want)+1 {
		return fmt.Errorf("pick map %v, want %d entries and a default", pick, len(want))
	}
	for i, w := range want {
		e := pick.Block[i]
		if nginxUnescape(e.Directive) != w.Directive || !slices.Equal(e.Args, w.Args) {
			return fmt.Errorf("pick entry %d: %s %q, want %s %q", i, e.Directive, e.Args, w.Directive, w.Args)
		}
	}
	if d := pick.Block[len(want)]; d.Directive != "default" || !slices.Equal(d.Args, []string{""}) {
		return fmt.Errorf("pick map default %s %q", d.Directive, d.Args)
	}
	if len(rewrites) != 1 || !slices.Equal(rewrites[0].Args, []string{pickVar}) || len(rewrites[0].Block) != 1 {
		return errors.New("want one if on the pick variable in the traffic location")
	} else if err := argsEqual(rewrites[0].Block[0], "^", pickVar, "last"); err != nil {
		return err
	}
	locs := map[string]*crossplane.Directive{}
	for _, l := range find(srv, "location") {
		if len(l.Args) == 2 && l.Args[0] == "=" {
			locs[l.Args[1]] = l
		}
	}
	for _, r := range rules {
		if !r.HasSettings() {
			continue
		}
		l := locs["orchestry-rule-"+r.ID]
		if l == nil {
			return fmt.Errorf("no location for rule %s", r.ID)
		}
		if err := checkRuleLocation(l.Block, app, va, r, s.App.Spec); err != nil {
			return fmt.Errorf("rule %s location: %w", r.ID, err)
		}
	}
	if got, wantLocs := len(find(srv, "location")), 3+len(want); got != wantLocs {
		return fmt.Errorf("%d locations, want %d", got, wantLocs)
	}
	zones := find(file, "limit_req_zone")
	for _, r := range rules {
		if r.HasSettings() && r.RateLimit != nil {
			z := "zone=req_" + app + "_" + r.ID + ":1m"
			if !slices.ContainsFunc(zones, func(d *crossplane.Directive) bool {
				return slices.Equal(d.Args, []string{"$binary_remote_addr", z, "rate=" + strconv.Itoa(r.RateLimit.RequestsPerSecond) + "r/s"})
			}) {
				return fmt.Errorf("no zone %s", z)
			}
		}
	}
	return nil
}

// checkRuleLocation checks one rule location's body.
func checkRuleLocation(body crossplane.Directives, app, va string, r events.Rule, spec events.AppSpec) error {
	if len(find(body, "internal")) != 1 {
		return errors.New("not internal")
	}
	if pp := find(body, "proxy_pass"); len(pp) != 1 {
		return errors.New("want one proxy_pass")
	} else if err := argsEqual(pp[0], "http://$orchestry_route_"+va+"$request_uri"); err != nil {
		return err
	}
	var reqs []string
	if spec.RateLimit != nil {
		reqs = append(reqs, "zone=req_"+app)
	}
	if r.RateLimit != nil {
		reqs = append(reqs, "zone=req_"+app+"_"+r.ID)
	}
	lr := find(body, "limit_req")
	if len(lr) != len(reqs) {
		return fmt.Errorf("%d limit_req, want %d", len(lr), len(reqs))
	}
	for i, z := range reqs {
		if lr[i].Args[0] != z {
			return fmt.Errorf("limit_req %q, want %s", lr[i].Args, z)
		}
	}
	if r.MaxBodySize != "" {
		if b := find(body, "client_max_body_size"); len(b) != 1 {
			return errors.New("want one client_max_body_size")
		} else if err := argsEqual(b[0], r.MaxBodySize); err != nil {
			return err
		}
	}
	if r.Timeout > 0 && len(find(body, "proxy_read_timeout")) != 1 {
		return errors.New("want one proxy_read_timeout")
	}
	adds := find(body, "add_header")
	if len(r.Headers) == 0 {
		if len(adds) != 0 {
			return errors.New("add_header without rule headers")
		}
		return nil
	}
	wantHeaders := map[string]string{}
	names := map[string]string{}
	for _, set := range []map[string]string{spec.Networking.Headers, r.Headers} {
		for k, v := range set {
			wantHeaders[strings.ToLower(k)] = v
			names[strings.ToLower(k)] = k
		}
	}
	if _, ok := wantHeaders["strict-transport-security"]; spec.Networking.SSL.HSTS && !ok {
		wantHeaders["strict-transport-security"] = hstsValue
		names["strict-transport-security"] = "Strict-Transport-Security"
	}
	if len(adds) != len(wantHeaders) {
		return fmt.Errorf("%d add_header, want %d", len(adds), len(wantHeaders))
	}
	for _, a := range adds {
		k := strings.ToLower(a.Args[0])
		if err := argsEqual(a, names[k], wantHeaders[k], "always"); err != nil {
			return err
		}
	}
	return nil
}

// checkSplit checks the split_clients block defining v: keyed on
// $request_id, or on key when sticky (whose map must read the cookie or
// header as intended), sending sp.Percent to the split target and the rest
// to target.
func checkSplit(file crossplane.Directives, byVar map[string]*crossplane.Directive, v, key string, sp *events.Split, target string) error {
	var sc *crossplane.Directive
	for _, d := range find(file, "split_clients") {
		if len(d.Args) == 2 && d.Args[1] == v {
			if sc != nil {
				return fmt.Errorf("two split_clients for %s", v)
			}
			sc = d
		}
	}
	if sc == nil {
		return fmt.Errorf("no split_clients for %s", v)
	}
	wantKey := "$request_id"
	if st := sp.Sticky; st != nil {
		wantKey = key
		m := byVar[key]
		if m == nil {
			return fmt.Errorf("no map for %s", key)
		}
		var src, k, kv, dv string
		switch {
		case st.Header != "":
			src = "$http_" + strings.ReplaceAll(strings.ToLower(st.Header), "-", "_")
			k, kv, dv = "", "$remote_addr", src
		case strings.Contains(st.Cookie, "-"):
			src = "$http_cookie"
			k, kv, dv = "~(?:^|[; ])"+st.Cookie+"=([^;]+)", "$1", "$remote_addr"
		default:
			src = "$cookie_" + st.Cookie
			k, kv, dv = "", "$remote_addr", src
		}
		if !slices.Equal(m.Args, []string{src, key}) || len(m.Block) != 2 ||
			nginxUnescape(m.Block[0].Directive) != k || !slices.Equal(m.Block[0].Args, []string{kv}) ||
			m.Block[1].Directive != "default" || !slices.Equal(m.Block[1].Args, []string{dv}) {
			return fmt.Errorf("sticky map %s %q: entries %v", key, m.Args, m.Block)
		}
	}
	if !slices.Equal(sc.Args, []string{wantKey, v}) {
		return fmt.Errorf("split_clients args %q, want %q", sc.Args, []string{wantKey, v})
	}
	pct := strconv.FormatFloat(math.Round(sp.Percent*100)/100, 'f', -1, 64) + "%"
	if len(sc.Block) != 2 || sc.Block[0].Directive != pct || !slices.Equal(sc.Block[0].Args, []string{"app_" + sp.Target}) ||
		sc.Block[1].Directive != "*" || !slices.Equal(sc.Block[1].Args, []string{"app_" + target}) {
		return fmt.Errorf("split_clients %s entries %v, want %s app_%s and * app_%s", v, sc.Block, pct, sp.Target, target)
	}
	return nil
}

// nginxUnescape undoes the escapes NGINX's lexer resolves in a token
// (crossplane keeps them): \" \' \\ \t \r \n; any other backslash
// stays.
func nginxUnescape(tok string) string {
	var sb strings.Builder
	for i := 0; i < len(tok); i++ {
		if tok[i] == '\\' && i+1 < len(tok) {
			switch tok[i+1] {
			case '"', '\'', '\\':
				i++
			case 't':
				sb.WriteByte('\t')
				i++
				continue
			case 'r':
				sb.WriteByte('\r')
				i++
				continue
			case 'n':
				sb.WriteByte('\n')
				i++
				continue
			}
		}
		sb.WriteByte(tok[i])
	}
	return sb.String()
}
