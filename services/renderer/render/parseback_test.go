package render

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	crossplane "github.com/nginxinc/nginx-go-crossplane"
	"github.com/orchestry/orchestry/pkg/events"
)

// allowed are the only directive names the renderer is meant to emit.
var allowed = map[string]bool{
	"daemon": true, "worker_processes": true, "pid": true, "error_log": true,
	"events": true, "worker_connections": true, "http": true,
	"default_type": true, "server_tokens": true, "sendfile": true, "tcp_nopush": true,
	"keepalive_timeout": true, "server_names_hash_bucket_size": true, "server_names_hash_max_size": true,
	"client_body_temp_path": true, "proxy_temp_path": true, "fastcgi_temp_path": true,
	"uwsgi_temp_path": true, "scgi_temp_path": true, "log_format": true, "access_log": true,
	"map": true, "include": true, "server": true, "listen": true, "server_name": true,
	"allow": true, "deny": true, "location": true, "return": true, "stub_status": true,
	"upstream": true, "least_conn": true, "ip_hash": true, "hash": true, "random": true,
	"keepalive": true, "keepalive_requests": true,
	"ssl_certificate": true, "ssl_certificate_key": true, "client_max_body_size": true,
	"proxy_connect_timeout": true, "proxy_read_timeout": true, "proxy_send_timeout": true,
	"add_header": true, "proxy_pass": true, "proxy_http_version": true, "proxy_set_header": true,
	"proxy_next_upstream": true, "set": true, "if": true,
	"proxy_next_upstream_tries": true, "proxy_next_upstream_timeout": true,
	"limit_req_zone": true, "limit_conn_zone": true, "limit_req": true, "limit_req_status": true,
	"limit_conn": true, "limit_conn_status": true,
	"ssl_protocols": true, "ssl_prefer_server_ciphers": true, "ssl_session_cache": true,
	"ssl_session_timeout": true, "ssl_session_tickets": true,
	"split_clients": true, "internal": true, "rewrite": true,
}

// splitEntryRE is the share of a split_clients entry.
var splitEntryRE = regexp.MustCompile(`^(\*|[1-9]?[0-9](\.[0-9]{1,2})?%)$`)

// memFS serves a rendered config (plus its version files) to crossplane.Parse.
func memFS(cfg Config) (*crossplane.ParseOptions, string) {
	const root = "/cfg"
	files := map[string][]byte{}
	for k, v := range VersionFiles(1) {
		files[root+"/"+k] = v
	}
	for k, v := range cfg.Files {
		files[root+"/"+k] = v
	}
	return &crossplane.ParseOptions{
		ParseComments:            true,
		ErrorOnUnknownDirectives: true,
		StopParsingOnError:       true,
		Open: func(p string) (io.ReadCloser, error) {
			b, ok := files[p]
			if !ok {
				return nil, fmt.Errorf("no file %s", p)
			}
			return io.NopCloser(bytes.NewReader(b)), nil
		},
		Glob: func(pattern string) ([]string, error) {
			var out []string
			for k := range files {
				if ok, _ := path.Match(pattern, k); ok {
					out = append(out, k)
				}
			}
			slices.Sort(out)
			return out, nil
		},
	}, root + "/" + MainFile
}

// checkParsed parses the rendered config back and checks that it holds only
// allowed directives, exactly the expected servers and upstreams, and each
// user value as exactly one argument where it belongs.
func checkParsed(cfg Config, states []events.RoutingState) error {
	opts, main := memFS(cfg)
	payload, err := crossplane.Parse(main, opts)
	if err != nil {
		return fmt.Errorf("parse: %w", err)
	}
	if len(payload.Errors) > 0 {
		return fmt.Errorf("parse: %v", payload.Errors[0].Error)
	}
	if want := len(cfg.Files) + 2; len(payload.Config) != want { // + the version files
		return fmt.Errorf("parsed %d files, want %d", len(payload.Config), want)
	}
	byFile := map[string]crossplane.Directives{}
	for _, c := range payload.Config {
		byFile[strings.TrimPrefix(c.File, "/cfg/")] = c.Parsed
		if err := walk(c.Parsed, nil, func(d *crossplane.Directive, parent *crossplane.Directive) error {
			if parent != nil && parent.Directive == "split_clients" {
				if !splitEntryRE.MatchString(d.Directive) || len(d.Args) != 1 || !strings.HasPrefix(d.Args[0], "app_") || len(d.Block) != 0 {
					return fmt.Errorf("%s:%d: unexpected split_clients entry %q %q", c.File, d.Line, d.Directive, d.Args)
				}
				return nil
			}
			if parent != nil && parent.Directive == "map" {
				if isRuleMap(parent) {
					return nil // checked entry by entry in checkRules
				}
				if d.Directive != "default" && d.Directive != "" && !strings.HasPrefix(d.Directive, cookieRegexPrefix) {
					return fmt.Errorf("%s:%d: unexpected map entry %q", c.File, d.Line, d.Directive)
				}
				return nil
			}
			if !allowed[d.Directive] {
				return fmt.Errorf("%s:%d: directive %q is not allowed", c.File, d.Line, d.Directive)
			}
			return nil
		}); err != nil {
			return err
		}
	}
	for _, s := range states {
		if err := checkApp(byFile[AppFile(s.App.Metadata.Name)], s); err != nil {
			return fmt.Errorf("app %s: %w", s.App.Metadata.Name, err)
		}
	}
	return nil
}

func walk(ds crossplane.Directives, parent *crossplane.Directive, f func(d, parent *crossplane.Directive) error) error {
	for _, d := range ds {
		if err := f(d, parent); err != nil {
			return err
		}
		if err := walk(d.Block, d, f); err != nil {
			return err
		}
	}
	return nil
}

func find(ds crossplane.Directives, name string) []*crossplane.Directive {
	var out []*crossplane.Directive
	for _, d := range ds {
		if d.Directive == name {
			out = append(out, d)
		}
	}
	return out
}

func argsEqual(d *crossplane.Directive, want ...string) error {
	if !slices.Equal(d.Args, want) {
		return fmt.Errorf("%s args %q, want %q", d.Directive, d.Args, want)
	}
	return nil
}

func checkApp(file crossplane.Directives, s events.RoutingState) error {
	if file == nil {
		return errors.New("no app file")
	}
	n := s.App.Spec.Networking
	ups, servers := find(file, "upstream"), find(file, "server")
	mapDirs := find(file, "map")
	zones := len(find(file, "limit_req_zone")) + len(find(file, "limit_conn_zone"))
	splits := len(find(file, "split_clients"))
	wantServers := 1
	if n.SSL.RedirectHTTP || (n.SSL.Enabled && len(servers) == 2) {
		wantServers = 2
		if err := checkPlainServer(servers[len(servers)-1], n); err != nil {
			return err
		}
	}
	if len(servers) != wantServers || len(file) != len(ups)+len(mapDirs)+zones+splits+wantServers {
		return fmt.Errorf("want one server and at most one upstream, got %d top-level directives", len(file))
	}
	if len(s.Instances) == 0 {
		if len(ups) != 0 {
			return errors.New("upstream without instances")
		}
	} else {
		if len(ups) != 1 {
			return errors.New("missing upstream")
		}
		if got := len(find(ups[0].Block, "server")); got != len(s.Instances) {
			return fmt.Errorf("upstream has %d servers, want %d", got, len(s.Instances))
		}
		if s.App.Spec.LBMethod == events.LBHash {
			h := find(ups[0].Block, "hash")
			v, extra, _ := hashKeyVariable(s.App.Metadata.Name, s.App.Spec.HashKey)
			if len(extra) != len(slices.DeleteFunc(slices.Clone(mapDirs), isRuleMap)) {
				return fmt.Errorf("%d maps, want %d", len(mapDirs), len(extra))
			}
			if len(h) != 1 {
				return errors.New("missing hash")
			}
			if err := argsEqual(h[0], v, "consistent"); err != nil {
				return err
			}
		}
	}
	srv := servers[0].Block
	if err := checkRules(file, srv, s); err != nil {
		return err
	}
	name := n.Domain
	if name == "" {
		name = "_"
	}
	if sn := find(srv, "server_name"); len(sn) != 1 {
		return errors.New("want one server_name")
	} else if err := argsEqual(sn[0], name); err != nil {
		return err
	}
	if set := find(srv, "set"); len(set) != 1 {
		return errors.New("want one set of the app variable")
	} else if err := argsEqual(set[0], appVariable, s.App.Metadata.Name); err != nil {
		return err
	}
	if n.MaxBodySize != "" {
		if err := argsEqual(find(srv, "client_max_body_size")[0], n.MaxBodySize); err != nil {
			return err
		}
	}
	adds := find(srv, "add_header")
	wantAdds := len(n.Headers)
	if n.SSL.HSTS && !hasHeader(n, "Strict-Transport-Security") {
		wantAdds++
		n.Headers = maps.Clone(n.Headers)
		if n.Headers == nil {
			n.Headers = map[string]string{}
		}
		n.Headers["Strict-Transport-Security"] = hstsValue
	}
	if len(adds) != wantAdds {
		return fmt.Errorf("%d add_header, want %d", len(adds), wantAdds)
	}
	for _, a := range adds {
		if len(a.Args) != 3 {
			return fmt.Errorf("add_header args %q", a.Args)
		}
		v, ok := n.Headers[a.Args[0]]
		if !ok {
			return fmt.Errorf("unexpected header %q", a.Args[0])
		}
		if err := argsEqual(a, a.Args[0], v, "always"); err != nil {
			return err
		}
	}
	return nil
}

// checkPlainServer checks the plain HTTP server of a TLS app: on the HTTP
// port for its domain, redirecting or answering 404, with the ACME
// challenge location when there is one.
func checkPlainServer(srv *crossplane.Directive, n events.Networking) error {
	if sn := find(srv.Block, "server_name"); len(sn) != 1 || !slices.Equal(sn[0].Args, []string{n.Domain}) {
		return fmt.Errorf("plain server names %v, want %s", sn, n.Domain)
	}
	if l := find(srv.Block, "listen"); len(l) != 1 || slices.Contains(l[0].Args, "ssl") {
		return fmt.Errorf("plain server listens %v", l)
	}
	for _, l := range find(srv.Block, "location") {
		switch {
		case slices.Equal(l.Args, []string{"^~", "/.well-known/acme-challenge/"}):
			pp := find(l.Block, "proxy_pass")
			if len(pp) != 1 || !strings.HasPrefix(pp[0].Args[0], "http://127.0.0.1:") {
				return fmt.Errorf("challenge location proxies %v", pp)
			}
		case slices.Equal(l.Args, []string{"/"}):
			r := find(l.Block, "return")
			if len(r) != 1 || (n.SSL.RedirectHTTP && r[0].Args[0] != "308") || (!n.SSL.RedirectHTTP && r[0].Args[0] != "404") {
				return fmt.Errorf("plain server answers %v", r)
			}
		default:
			return fmt.Errorf("plain server location %q", l.Args)
		}
	}
	return nil
}

// isRuleMap reports whether a map belongs to the routing rules.
func isRuleMap(m *crossplane.Directive) bool {
	return len(m.Args) == 2 && (strings.HasPrefix(m.Args[1], "$orchestry_r") || strings.HasPrefix(m.Args[1], "$orchestry_down_") ||
		strings.HasPrefix(m.Args[1], "$orchestry_pick_"))
}

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

// hasHeader reports whether the app's own headers set name.
func hasHeader(n events.Networking, name string) bool {
	for h := range n.Headers {
		if strings.EqualFold(h, name) {
			return true
		}
	}
	return false
}
