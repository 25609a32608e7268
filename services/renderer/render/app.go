package render

import (
	"fmt"
	"maps"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	crossplane "github.com/nginxinc/nginx-go-crossplane"
	"github.com/orchestry/orchestry/pkg/events"
	"github.com/orchestry/orchestry/services/renderer/tlsfiles"
)

// Defaults of the per-app and per-server settings.
const (
	defaultPort        = 80
	defaultTLSPort     = 443
	defaultBodySize    = "1m"
	defaultTimeout     = 60 * time.Second
	maxConnectTimeout  = 5 * time.Second
	defaultMaxFails    = 3
	defaultFailTimeout = "10s"
	// upstreamKeepalive is each worker's cache of idle connections per
	// upstream: at 32, 64 concurrent requests on one worker closed and
	// reopened 100-200 backend connections per 1,000 requests (see the
	// throughput bench); it opens nothing the load does not need.
	upstreamKeepalive = "128"
)

// server is one upstream server entry.
type server struct {
	addr        string // ip:port, IPv6 in brackets
	weight      int
	maxFails    int
	failTimeout string
	maxConns    int  // 0 = unlimited
	backup      bool // only honoured by methods that allow it
}

func newServer(in events.Instance) server {
	w := in.Weight
	if w == 0 {
		w = 1
	}
	ip := netip.MustParseAddr(in.IP) // validated by Instance.Validate
	return server{
		addr:        netip.AddrPortFrom(ip, uint16(in.Port)).String(),
		weight:      w,
		maxFails:    defaultMaxFails,
		failTimeout: defaultFailTimeout,
		backup:      in.Backup,
	}
}

func (s server) directive(method string) *crossplane.Directive {
	args := []string{
		s.addr,
		"weight=" + strconv.Itoa(s.weight),
		"max_fails=" + strconv.Itoa(s.maxFails),
		"fail_timeout=" + s.failTimeout,
	}
	if s.maxConns > 0 {
		args = append(args, "max_conns="+strconv.Itoa(s.maxConns))
	}
	if s.backup && allowsBackup(method) {
		args = append(args, "backup")
	}
	return d("server", args...)
}

// upstreamName is the NGINX upstream of an app.
func upstreamName(app string) string { return "app_" + app }

// appConfig is apps/<name>.conf: the app's upstream (when it has
// instances), its server, and the plain HTTP server of a TLS app that
// redirects or answers ACME challenges.
func appConfig(a app, opts Options, site site) (crossplane.Directives, error) {
	rt := ruleRouting(a, site.upstreams)
	out := limitZones(a, rt.own)
	if len(a.instances) > 0 {
		lb, extra, err := lbDirective(a.name, a.spec)
		if err != nil {
			return nil, err
		}
		out = append(append(out, extra...), upstream(a, lb))
	}
	out = append(out, rt.maps...)
	out = append(out, appServer(a, opts, rt))
	n := a.spec.Networking
	switch {
	case n.SSL.RedirectHTTP:
		out = append(out, redirectServer(a, opts))
	case n.SSL.Enabled && opts.ACMEChallenge != "" && !site.sslOnHTTP && !site.plainHTTP[n.Domain]:
		out = append(out, challengeServer(n.Domain, a.name, opts))
	}
	return out, nil
}

func upstream(a app, lb *crossplane.Directive) *crossplane.Directive {
	body := make(crossplane.Directives, 0, len(a.instances)+4)
	if lb != nil {
		body = append(body, lb)
	}
	// NGINX needs a primary: when every instance is a backup, none is.
	primary := slices.ContainsFunc(a.instances, func(in events.Instance) bool { return !in.Backup })
	loaded := slices.ContainsFunc(a.instances, func(in events.Instance) bool { return in.LoadBand > 0 })
	for _, in := range a.instances {
		s := newServer(in)
		s.backup = s.backup && primary
		if loaded {
			s.weight *= loadFactor(in.LoadBand)
		}
		if a.auto != nil && len(a.auto.Weights) > 0 {
			s.weight *= autoFactor(a.auto.Weights, in.ID)
		}
		if m := a.spec.MaxConns; m > 0 {
			s.maxConns = max(1, m*loadFactor(in.LoadBand)/events.MaxLoadBand)
		}
		body = append(body, s.directive(a.spec.LBMethod))
	}
	body = append(body,
		d("keepalive", upstreamKeepalive),
		d("keepalive_requests", "1000"),
		d("keepalive_timeout", "60s"),
	)
	return blk("upstream", []string{upstreamName(a.name)}, body...)
}

func externalPort(n events.Networking) int {
	switch {
	case n.ExternalPort != 0:
		return n.ExternalPort
	case n.SSL.Enabled:
		return defaultTLSPort
	}
	return defaultPort
}

// hstsValue is the Strict-Transport-Security header of apps with ssl.hsts.
const hstsValue = "max-age=31536000"

// redirectServer is the plain HTTP server that sends a TLS app's clients
// to HTTPS (and answers ACME challenges for its domain).
func redirectServer(a app, opts Options) *crossplane.Directive {
	n := a.spec.Networking
	target := "https://$host$request_uri"
	if p := externalPort(n); p != defaultTLSPort {
		target = "https://$host:" + strconv.Itoa(p) + "$request_uri"
	}
	body := crossplane.Directives{
		d("listen", opts.listen(opts.httpPort())),
		d("server_name", n.Domain),
		d("set", appVariable, a.name),
	}
	body = append(body, challengeLocation(opts)...)
	body = append(body, blk("location", []string{"/"},
		d("return", "308", target),
	))
	return blk("server", nil, body...)
}

// challengeServer is the plain HTTP server of a TLS app (name, or "" for
// a domain awaiting its certificate) that does not redirect: it answers
// ACME challenges for the domain and nothing else.
func challengeServer(domain, name string, opts Options) *crossplane.Directive {
	body := crossplane.Directives{
		d("listen", opts.listen(opts.httpPort())),
		d("server_name", domain),
		d("set", appVariable, name),
	}
	body = append(body, challengeLocation(opts)...)
	body = append(body, blk("location", []string{"/"},
		d("default_type", "text/plain"),
		d("return", "404", "not found\n"),
	))
	return blk("server", nil, body...)
}

// acmeChallengePath is where ACME HTTP-01 validation requests arrive.
const acmeChallengePath = "/.well-known/acme-challenge/"

// challengeLocation sends ACME HTTP-01 requests to the certs service
// (nothing without Options.ACMEChallenge). It wins over every other
// location of the server, so an app's rules and redirects never see them.
func challengeLocation(opts Options) crossplane.Directives {
	if opts.ACMEChallenge == "" {
		return nil
	}
	return crossplane.Directives{blk("location", []string{"^~", acmeChallengePath},
		d("proxy_pass", "http://"+opts.ACMEChallenge),
		d("proxy_http_version", "1.1"),
		d("proxy_set_header", "Host", "$host"),
		d("proxy_set_header", "Connection", ""),
		d("proxy_connect_timeout", "5s"),
		d("proxy_read_timeout", "10s"),
	)}
}

// appServer is the app's server. rt is what the app's rules add: with
// rules, the traffic location proxies to the upstream their maps chose, and
// a request chosen by a rule with settings of its own goes on to that
// rule's location.
func appServer(a app, opts Options, rt routing) *crossplane.Directive {
	n := a.spec.Networking
	port := opts.listen(externalPort(n))
	var body crossplane.Directives
	if n.SSL.Enabled {
		body = append(body,
			d("listen", port, "ssl", "http2"),
			d("ssl_certificate", tlsfiles.CertFile(opts.CertDir, n.Domain)),
			d("ssl_certificate_key", tlsfiles.KeyFile(opts.CertDir, n.Domain)),
		)
	} else {
		body = append(body, d("listen", port))
	}
	name := n.Domain
	if name == "" {
		name = "_"
	}
	bodySize := n.MaxBodySize
	if bodySize == "" {
		bodySize = defaultBodySize
	}
	body = append(body,
		d("server_name", name),
		d("set", appVariable, a.name),
		d("client_max_body_size", bodySize),
	)
	body = append(body, proxyTimeouts(n.Timeout)...)
	body = append(body, responseHeaders(n, nil)...)
	if !n.SSL.Enabled && externalPort(n) == opts.httpPort() {
		body = append(body, challengeLocation(opts)...)
	}
	body = append(body, blk("location", []string{"=", "/_health"},
		d("access_log", "off"),
		d("default_type", "text/plain"),
		d("return", "200", "ok\n"),
	))
	// NGINX's connection counters, for callers on this host only.
	body = append(body, blk("location", []string{"=", "/_status"},
		d("access_log", "off"),
		d("allow", "127.0.0.1"),
		d("allow", "::1"),
		d("deny", "all"),
		d("stub_status"),
	))
	// Traffic: a rule's own location, or limits, then the 503 page or the
	// proxy. The rewrite runs before the limits: a rule location applies
	// the app's limits itself.
	var loc crossplane.Directives
	if rt.pick != "" {
		loc = append(loc, blk("if", []string{rt.pick},
			d("rewrite", "^", rt.pick, "last"),
		))
	}
	loc = append(loc, limits(a, nil)...)
	switch {
	case rt.route != "":
		loc = append(loc, proxy(a, rt, "http://"+rt.route)...)
	case len(a.instances) == 0:
		loc = append(loc,
			d("default_type", "text/plain"),
			d("return", "503", "no instances available\n"),
		)
	default:
		loc = append(loc, proxy(a, rt, "http://"+upstreamName(a.name))...)
	}
	body = append(body, blk("location", []string{"/"}, loc...))
	for _, r := range rt.own {
		body = append(body, ruleLocation(a, rt, r))
	}
	return blk("server", nil, body...)
}

// ruleLocation is the internal location of a rule with settings of its
// own: the app's limits and the rule's, its body size, timeouts and
// headers, and the proxy to the upstream the rule maps chose.
//
// Requests reach it by a rewrite of the traffic location. The route
// variable it proxies to was decided before that rewrite changed $uri:
// NGINX caches a map's value, and those of the maps it reads, for the
// request once evaluated, and the pick map that the rewrite follows reads
// the same path and header maps as the route map. The upstream gets the
// original request URI ($request_uri), exactly as the traffic location
// sends it.
func ruleLocation(a app, rt routing, r events.Rule) *crossplane.Directive {
	body := crossplane.Directives{d("internal")}
	body = append(body, limits(a, &r)...)
	if r.MaxBodySize != "" {
		body = append(body, d("client_max_body_size", r.MaxBodySize))
	}
	if r.Timeout > 0 {
		body = append(body, proxyTimeouts(r.Timeout)...)
	}
	if len(r.Headers) > 0 {
		// add_header in a location replaces the server's: repeat the
		// app's.
		body = append(body, responseHeaders(a.spec.Networking, r.Headers)...)
	}
	body = append(body, proxy(a, rt, "http://"+rt.route+"$request_uri")...)
	return blk("location", []string{"=", ruleURI(r.ID)}, body...)
}

// proxyTimeouts are the upstream timeouts for seconds (0: the default);
// connecting takes at most maxConnectTimeout.
func proxyTimeouts(seconds float64) crossplane.Directives {
	timeout := defaultTimeout
	if seconds > 0 {
		timeout = max(time.Duration(math.Round(seconds*1000))*time.Millisecond, time.Millisecond)
	}
	return crossplane.Directives{
		d("proxy_connect_timeout", duration(min(timeout, maxConnectTimeout))),
		d("proxy_read_timeout", duration(timeout)),
		d("proxy_send_timeout", duration(timeout)),
	}
}

// responseHeaders are the app's response headers, then a rule's (which
// override an app header of the same name, in any case), then HSTS unless
// a header sets it, sorted by name.
func responseHeaders(n events.Networking, rule map[string]string) crossplane.Directives {
	type header struct{ name, value string }
	merged := map[string]header{}
	for _, set := range []map[string]string{n.Headers, rule} {
		for k, v := range set {
			merged[strings.ToLower(k)] = header{k, v}
		}
	}
	if n.SSL.HSTS && merged["strict-transport-security"] == (header{}) {
		merged["strict-transport-security"] = header{"Strict-Transport-Security", hstsValue}
	}
	keys := slices.Sorted(maps.Keys(merged))
	out := make(crossplane.Directives, 0, len(keys))
	for _, k := range keys {
		out = append(out, d("add_header", merged[k].name, merged[k].value, "always"))
	}
	return out
}

// proxy proxies to target: a 503 when the route chose an app without
// upstream, the forwarded headers and the app's retry policy.
func proxy(a app, rt routing, target string) crossplane.Directives {
	var out crossplane.Directives
	if rt.down != "" {
		out = append(out, blk("if", []string{rt.down},
			d("return", "503", "no instances available\n"),
		))
	}
	out = append(out,
		d("proxy_pass", target),
		d("proxy_http_version", "1.1"),
		d("proxy_set_header", "Host", "$host"),
		d("proxy_set_header", "X-Real-IP", "$remote_addr"),
		d("proxy_set_header", "X-Forwarded-For", "$proxy_add_x_forwarded_for"),
		d("proxy_set_header", "X-Forwarded-Proto", "$scheme"),
		d("proxy_set_header", "X-Forwarded-Host", "$host"),
		d("proxy_set_header", "X-Forwarded-Port", "$server_port"),
		d("proxy_set_header", "Upgrade", "$http_upgrade"),
		d("proxy_set_header", "Connection", "$connection_upgrade"),
	)
	return append(out, retries(a.spec.Retries)...)
}

// duration writes a positive duration in NGINX time syntax: whole seconds
// as "Ns", otherwise milliseconds.
func duration(t time.Duration) string {
	if t%time.Second == 0 {
		return fmt.Sprintf("%ds", t/time.Second)
	}
	return fmt.Sprintf("%dms", t/time.Millisecond)
}

// Shared memory of each limit zone: about 16,000 client addresses.
const limitZoneSize = "1m"

func reqZone(app string) string  { return "req_" + app }
func connZone(app string) string { return "conn_" + app }

// ruleReqZone is the rate limit zone of a rule; app names hold no '_', so
// it is distinct from every app's zone and every other rule's.
func ruleReqZone(app, rule string) string { return "req_" + app + "_" + rule }

// limitZones are the http-level zones of the app's rate and connection
// limits and of its rules' rate limits (the app file is included at http
// level).
func limitZones(a app, rules []events.Rule) crossplane.Directives {
	var out crossplane.Directives
	zone := func(name string, l *events.RateLimit) {
		out = append(out, d("limit_req_zone", "$binary_remote_addr", "zone="+name+":"+limitZoneSize,
			"rate="+strconv.Itoa(l.RequestsPerSecond)+"r/s"))
	}
	if l := a.spec.RateLimit; l != nil {
		zone(reqZone(a.name), l)
	}
	for _, r := range rules {
		if r.RateLimit != nil {
			zone(ruleReqZone(a.name, r.ID), r.RateLimit)
		}
	}
	if a.spec.ConnLimit > 0 {
		out = append(out, d("limit_conn_zone", "$binary_remote_addr", "zone="+connZone(a.name)+":"+limitZoneSize))
	}
	return out
}

// limits applies the app's rate and connection limits, and the rate limit
// of rule when it is not nil; refused requests get 429.
func limits(a app, rule *events.Rule) crossplane.Directives {
	var out crossplane.Directives
	req := func(zone string, l *events.RateLimit) {
		if l.Burst > 0 { // NGINX refuses burst=0
			out = append(out, d("limit_req", "zone="+zone, "burst="+strconv.Itoa(l.Burst), "nodelay"))
		} else {
			out = append(out, d("limit_req", "zone="+zone, "nodelay"))
		}
	}
	if l := a.spec.RateLimit; l != nil {
		req(reqZone(a.name), l)
	}
	if rule != nil && rule.RateLimit != nil {
		req(ruleReqZone(a.name, rule.ID), rule.RateLimit)
	}
	if len(out) > 0 {
		out = append(out, d("limit_req_status", "429"))
	}
	if n := a.spec.ConnLimit; n > 0 {
		out = append(out,
			d("limit_conn", connZone(a.name), strconv.Itoa(n)),
			d("limit_conn_status", "429"),
		)
	}
	return out
}

// retries is the app's proxy_next_upstream policy.
func retries(r *events.Retries) crossplane.Directives {
	if r == nil {
		return crossplane.Directives{d("proxy_next_upstream", "error", "timeout")}
	}
	on := r.Conditions
	if len(on) == 0 {
		on = []string{"error", "timeout"}
	}
	out := crossplane.Directives{d("proxy_next_upstream", on...)}
	if r.Tries > 0 {
		out = append(out, d("proxy_next_upstream_tries", strconv.Itoa(r.Tries)))
	}
	if r.Timeout > 0 {
		t := max(time.Duration(math.Round(r.Timeout*1000))*time.Millisecond, time.Millisecond)
		out = append(out, d("proxy_next_upstream_timeout", duration(t)))
	}
	return out
}

// loadFactor multiplies an instance's weight by its load band, in an app
// where some instance reported its load: band 1 (light) weighs 4 times band
// 4 (saturated). An instance without a report counts as light.
func loadFactor(band int) int {
	if band <= 0 {
		band = 1
	}
	return events.MaxLoadBand + 1 - band
}

// autoFactor multiplies an instance's weight by its latency factor under
// routing's auto choice: 4 for the fastest (and an instance not listed)
// down to 1.
func autoFactor(weights map[string]int, id string) int {
	if f, ok := weights[id]; ok {
		return f
	}
	return events.MaxAutoWeight
}
