package render

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"path"
	"regexp"
	"slices"
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

// hasHeader reports whether the app's own headers set name.
func hasHeader(n events.Networking, name string) bool {
	for h := range n.Headers {
		if strings.EqualFold(h, name) {
			return true
		}
	}
	return false
}
