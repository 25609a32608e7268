// Package render turns the routing state of Orchestry apps into a complete
// NGINX configuration.
//
// The configuration is built as a crossplane AST and serialised by
// crossplane, never by string templates: every user-supplied value is first
// checked against the strict grammar of pkg/events (App.Validate,
// Instance.Validate) and then emitted as exactly one argument of one
// directive. Output is deterministic (apps sorted by name, instances by id,
// headers by name), so a byte-identical render has the same Hash.
package render

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	crossplane "github.com/nginxinc/nginx-go-crossplane"
	"github.com/orchestry/orchestry/pkg/events"
)

// Options are the node-level settings of a render.
type Options struct {
	// Prefix is the absolute NGINX prefix directory (pid, temp dirs and logs
	// live under it).
	Prefix string
	// StatusListen is the internal server with /_orchestry/version,
	// /_health and stub_status: a loopback address and port, or a private
	// or unspecified one on an internal network, where only loopback and
	// private addresses may ask.
	StatusListen string
	// CertDir is the absolute directory holding <domain>.crt and
	// <domain>.key for TLS apps.
	CertDir string
	// WorkerProcesses is the number of NGINX workers; 0 means auto.
	WorkerProcesses int
	// Node names this NGINX node in every access log line; empty means
	// "local".
	Node string
	// Syslog is "host:port" of the metrics service's syslog listener: NGINX
	// sends every request there as one JSON line (see AccessLogFields). Empty
	// keeps a plain access log file under Prefix/logs instead.
	Syslog string
	// HTTPPort is the plain HTTP port of the servers that redirect TLS apps
	// to HTTPS and answer ACME HTTP-01 challenges; 0 means 80.
	HTTPPort int
	// ACMEChallenge is "host:port" of the certs service's HTTP-01
	// responder: every server on HTTPPort proxies
	// /.well-known/acme-challenge/ there, and a TLS app with a domain but
	// no such server gets one that does only that. Empty routes no
	// challenge.
	ACMEChallenge string
	// AwaitingCerts are the domains of TLS apps left out of this render
	// for want of a usable certificate: with ACMEChallenge they get
	// challenge servers all the same, so that their first certificate can
	// be issued.
	AwaitingCerts []string
	// ListenIP, when set, is the one address app, redirect and challenge
	// servers listen on (e.g. an internal interface, or loopback in
	// tests); empty listens on every address.
	ListenIP string
}

// listen is the listen argument of port.
func (o Options) listen(port int) string {
	if o.ListenIP == "" {
		return strconv.Itoa(port)
	}
	return netip.AddrPortFrom(netip.MustParseAddr(o.ListenIP), uint16(port)).String()
}

// httpPort is HTTPPort with its default.
func (o Options) httpPort() int {
	if o.HTTPPort == 0 {
		return defaultPort
	}
	return o.HTTPPort
}

// Config is a rendered NGINX configuration: files relative to the config
// directory.
type Config struct {
	// Files maps a path relative to the config directory ("nginx.conf",
	// "apps/<app>.conf") to its content. It never holds "version.conf".
	Files map[string][]byte
	// Hash is the hex sha256 over the sorted file names and contents.
	Hash string
	// RoutingHash is the hex sha256 over every file but MainFile: where
	// each app's traffic goes. Nodes that serve the same state have the
	// same RoutingHash whatever their own settings (node name, status
	// server), which are in MainFile.
	RoutingHash string
}

// Names of the files Render produces, relative to the config directory.
const (
	MainFile    = "nginx.conf"
	VersionName = "version.conf"
	// ConfigVersionName is the http-level file that sets
	// $orchestry_config_version, which every JSON access log line carries.
	ConfigVersionName = "config-version.conf"
	appsDir           = "apps"
)

// AppFile is the path, relative to the config directory, of an app's file.
func AppFile(app string) string { return appsDir + "/" + app + ".conf" }

// Render builds the whole configuration for apps (only the instances to
// serve are in each RoutingState; deleted states are never passed). It
// validates every app with App.Validate and each instance with
// Instance.Validate first and returns an error naming the app and field on
// failure.
func Render(apps []events.RoutingState, opts Options) (Config, error) {
	if err := opts.Validate(); err != nil {
		return Config{}, fmt.Errorf("render: options: %w", err)
	}
	sorted, err := prepare(apps)
	if err != nil {
		return Config{}, err
	}
	if err := checkPorts(sorted, opts.httpPort()); err != nil {
		return Config{}, err
	}
	b := newBuilder()
	files := make(map[string][]byte, len(sorted)+1)
	main, err := b.build(mainConfig(opts, len(sorted)))
	if err != nil {
		return Config{}, fmt.Errorf("render: %s: %w", MainFile, err)
	}
	files[MainFile] = main
	site := site{upstreams: make(map[string]bool, len(sorted)), plainHTTP: map[string]bool{}}
	for _, a := range sorted {
		site.upstreams[a.name] = len(a.instances) > 0
		n := a.spec.Networking
		switch {
		case externalPort(n) != opts.httpPort():
		case n.SSL.Enabled:
			site.sslOnHTTP = true
		case n.Domain != "":
			site.plainHTTP[n.Domain] = true
		}
	}
	ab := newAppBuilder()
	for _, a := range sorted {
		ds, err := appConfig(a, opts, site)
		if err != nil {
			return Config{}, fmt.Errorf("render %s: %w", a.name, err)
		}
		out, err := ab.build(ds)
		if err != nil {
			return Config{}, fmt.Errorf("render %s: %w", a.name, err)
		}
		files[AppFile(a.name)] = out
	}
	if ds := awaitingServers(opts, site); len(ds) > 0 {
		out, err := ab.build(ds)
		if err != nil {
			return Config{}, fmt.Errorf("render: %s: %w", awaitingFile, err)
		}
		files[awaitingFile] = out
	}
	routing := hashFiles(files, MainFile)
	return Config{Files: files, Hash: hashWith(routing, files[MainFile]), RoutingHash: routing}, nil
}

// awaitingFile holds the challenge servers of domains awaiting a
// certificate; app names never start with '_'.
const awaitingFile = appsDir + "/_awaiting-certs.conf"

// awaitingServers are the challenge servers of opts.AwaitingCerts, one per
// domain that no plain app serves on the HTTP port.
func awaitingServers(opts Options, site site) crossplane.Directives {
	if opts.ACMEChallenge == "" || site.sslOnHTTP {
		return nil
	}
	domains := slices.Clone(opts.AwaitingCerts)
	slices.Sort(domains)
	var out crossplane.Directives
	for _, dom := range slices.Compact(domains) {
		if site.plainHTTP[dom] {
			continue
		}
		out = append(out, challengeServer(dom, "", opts))
	}
	return out
}

// VersionFile is the content of "version.conf", included inside the status
// server's version location; it returns the version as the body.
func VersionFile(version uint64) []byte {
	out, err := newBuilder().build(crossplane.Directives{
		d("return", "200", fmt.Sprintf("%d\n", version)),
	})
	if err != nil {
		// Building into memory from constant directives cannot fail.
		panic(fmt.Sprintf("render: version file: %v", err))
	}
	return out
}

// ConfigVersionFile is the content of "config-version.conf", included at
// http level: a map setting $orchestry_config_version to the version, so
// each access log line names the config version that served it. Like
// version.conf it is written when the config is staged under its version
// and is not part of Config.Hash.
func ConfigVersionFile(version uint64) []byte {
	out, err := newBuilder().build(crossplane.Directives{
		blk("map", []string{"", configVersionVariable}, d("default", strconv.FormatUint(version, 10))),
	})
	if err != nil {
		// Building into memory from constant directives cannot fail.
		panic(fmt.Sprintf("render: config version file: %v", err))
	}
	return out
}

// VersionFiles are the files that name version v, which the applier
// writes beside a rendered config when it stages it.
func VersionFiles(v uint64) map[string][]byte {
	return map[string][]byte{VersionName: VersionFile(v), ConfigVersionName: ConfigVersionFile(v)}
}

// Validate checks the options; Render calls it first.
func (o Options) Validate() error {
	if !filepath.IsAbs(o.Prefix) {
		return fmt.Errorf("prefix %q must be an absolute path", o.Prefix)
	}
	if !filepath.IsAbs(o.CertDir) {
		return fmt.Errorf("cert dir %q must be an absolute path", o.CertDir)
	}
	ap, err := netip.ParseAddrPort(o.StatusListen)
	if err != nil || ap.Port() == 0 || ap.Addr().Zone() != "" ||
		!(ap.Addr().IsLoopback() || ap.Addr().IsPrivate() || ap.Addr().IsUnspecified()) {
		return fmt.Errorf("status listen %q must be a loopback, private or unspecified (all interfaces of an internal host) address and port, e.g. 127.0.0.1:8081", o.StatusListen)
	}
	if o.Node != "" {
		if err := events.CheckName(o.Node); err != nil {
			return fmt.Errorf("node: %w", err)
		}
	}
	if o.Syslog != "" {
		if err := checkSyslog(o.Syslog); err != nil {
			return err
		}
	}
	if o.WorkerProcesses < 0 || o.WorkerProcesses > 1024 {
		return fmt.Errorf("worker processes %d must be between 0 (auto) and 1024", o.WorkerProcesses)
	}
	if o.HTTPPort < 0 || o.HTTPPort > 65535 {
		return fmt.Errorf("HTTP port %d must be between 1 and 65535 (0: 80)", o.HTTPPort)
	}
	if o.ACMEChallenge != "" {
		if ap, err := netip.ParseAddrPort(o.ACMEChallenge); err != nil || ap.Port() == 0 || ap.Addr().Zone() != "" {
			return fmt.Errorf("ACME challenge address %q must be an IP address and port, e.g. 127.0.0.1:8402", o.ACMEChallenge)
		}
	}
	if o.ListenIP != "" {
		if ip, err := netip.ParseAddr(o.ListenIP); err != nil || ip.Zone() != "" {
			return fmt.Errorf("listen IP %q must be an IP address", o.ListenIP)
		}
	}
	for _, dom := range o.AwaitingCerts {
		if err := events.CheckDomain(dom); err != nil {
			return fmt.Errorf("awaiting certificate %q: %w", dom, err)
		}
	}
	for _, p := range []string{o.Prefix, o.CertDir} {
		if strings.ContainsAny(p, "\"'\\$;{}#\r\n\t") {
			return fmt.Errorf("path %q holds a character that is not allowed in a config path", p)
		}
	}
	return nil
}

// app is a validated, normalised app ready to be rendered.
type app struct {
	name      string
	spec      events.AppSpec
	instances []events.Instance
	auto      *events.AutoChoice
}

// prepare validates every app and instance, rejects duplicates and returns
// the apps sorted by name with their instances sorted by id.
func prepare(states []events.RoutingState) ([]app, error) {
	out := make([]app, 0, len(states))
	seen := make(map[string]bool, len(states))
	for i, st := range states {
		name := st.App.Metadata.Name
		label := name
		if events.CheckName(name) != nil {
			label = fmt.Sprintf("apps[%d]", i)
		}
		if st.Deleted {
			return nil, fmt.Errorf("render %s: deleted app passed to Render", label)
		}
		if err := st.App.Validate(); err != nil {
			return nil, fmt.Errorf("render %s: %w", label, err)
		}
		if seen[name] {
			return nil, fmt.Errorf("render %s: metadata.name: duplicate app", name)
		}
		seen[name] = true
		ids := make(map[string]bool, len(st.Instances))
		for j, in := range st.Instances {
			if err := in.Validate(); err != nil {
				return nil, fmt.Errorf("render %s: %w", name, prefixFields(fmt.Sprintf("instances[%d].", j), err))
			}
			if ids[in.ID] {
				return nil, fmt.Errorf("render %s: instances[%d].id: duplicate instance id %s", name, j, in.ID)
			}
			ids[in.ID] = true
		}
		insts := slices.Clone(st.Instances)
		slices.SortFunc(insts, func(a, b events.Instance) int { return strings.Compare(a.ID, b.ID) })
		out = append(out, app{name: name, spec: st.App.Spec, instances: insts, auto: st.Auto})
	}
	slices.SortFunc(out, func(a, b app) int { return strings.Compare(a.name, b.name) })
	return out, nil
}

// prefixFields puts p in front of every field path of a ValidationError.
func prefixFields(p string, err error) error {
	var ve events.ValidationError
	if !errors.As(err, &ve) {
		return fmt.Errorf("%s%w", p, err)
	}
	out := make(events.ValidationError, len(ve))
	for i, f := range ve {
		out[i] = events.FieldError{Field: p + f.Field, Reason: f.Reason}
	}
	return out
}

// site is what rendering one app needs to know of the others.
type site struct {
	// upstreams holds the apps of the render that have an upstream.
	upstreams map[string]bool
	// plainHTTP holds the domains a plain app serves on the HTTP port.
	plainHTTP map[string]bool
	// sslOnHTTP is true when an app serves TLS on the HTTP port, which
	// then takes no challenge servers.
	sslOnHTTP bool
}

// checkPorts refuses apps that share an external port but disagree on TLS:
// NGINX would turn TLS on for every server on that port. httpPort is where
// redirects listen.
func checkPorts(apps []app, httpPort int) error {
	type first struct {
		name string
		ssl  bool
	}
	ports := make(map[int]first)
	use := func(name string, p int, ssl bool, field string) error {
		f, ok := ports[p]
		if !ok {
			ports[p] = first{name, ssl}
			return nil
		}
		if f.ssl != ssl {
			return fmt.Errorf("render %s: %s: port %d is shared with app %s, which serves it with ssl=%t", name, field, p, f.name, f.ssl)
		}
		return nil
	}
	for _, a := range apps {
		n := a.spec.Networking
		if err := use(a.name, externalPort(n), n.SSL.Enabled, "spec.networking.ssl.enabled"); err != nil {
			return err
		}
		if n.SSL.RedirectHTTP {
			if err := use(a.name, httpPort, false, "spec.networking.ssl.redirect_http"); err != nil {
				return err
			}
		}
	}
	return nil
}

// builder serialises directive trees with crossplane. Directives that carry
// user values are written by quoteBuilder, which quotes more strictly than
// crossplane's default (that would, for example, leave a leading '#').
type builder struct {
	opts *crossplane.BuildOptions
	buf  bytes.Buffer
}

// userValueDirectives are the leaf directives whose arguments may hold
// user-supplied values.
var userValueDirectives = []string{
	"add_header", "server_name", "client_max_body_size", "ssl_certificate", "ssl_certificate_key",
}

func newBuilder() *builder {
	return &builder{opts: &crossplane.BuildOptions{
		Indent:   4,
		Builders: []crossplane.RegisterBuilder{crossplane.BuildWithBuilder(quoteBuilder{}, userValueDirectives...)},
	}}
}

// newAppBuilder is the builder of app files, whose maps (all at top
// level) may hold user values as keys.
func newAppBuilder() *builder {
	b := newBuilder()
	b.opts.Builders = append(b.opts.Builders, crossplane.BuildWithBuilder(mapBuilder{}, "map"))
	return b
}

func (b *builder) build(ds crossplane.Directives) ([]byte, error) {
	b.buf.Reset()
	if err := crossplane.Build(&b.buf, crossplane.Config{Parsed: ds}, b.opts); err != nil {
		return nil, err
	}
	b.buf.WriteByte('\n')
	return bytes.Clone(b.buf.Bytes()), nil
}

// quoteBuilder writes a leaf directive, quoting every argument that is not
// made only of plainly safe characters.
type quoteBuilder struct{}

// Build implements crossplane.Builder.
func (quoteBuilder) Build(stmt *crossplane.Directive) string {
	var sb strings.Builder
	sb.WriteString(stmt.Directive)
	for _, a := range stmt.Args {
		sb.WriteByte(' ')
		sb.WriteString(quoteArg(a))
	}
	sb.WriteByte(';')
	return sb.String()
}

// quoteArg returns a as one NGINX argument: bare when it holds only
// characters that never mean anything to the NGINX lexer, otherwise in
// double quotes with '"' and '\' escaped.
func quoteArg(a string) string {
	if a != "" && plain(a) {
		return a
	}
	var sb strings.Builder
	sb.WriteByte('"')
	for i := 0; i < len(a); i++ {
		if a[i] == '"' || a[i] == '\\' {
			sb.WriteByte('\\')
		}
		sb.WriteByte(a[i])
	}
	sb.WriteByte('"')
	return sb.String()
}

func plain(a string) bool {
	for i := 0; i < len(a); i++ {
		c := a[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("._-:/*=,+@%", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// d makes a leaf directive.
func d(name string, args ...string) *crossplane.Directive {
	if args == nil {
		args = []string{}
	}
	return &crossplane.Directive{Directive: name, Args: args}
}

// blk makes a block directive.
func blk(name string, args []string, body ...*crossplane.Directive) *crossplane.Directive {
	if args == nil {
		args = []string{}
	}
	return &crossplane.Directive{Directive: name, Args: args, Block: crossplane.Directives(body)}
}

// syslogHostRE is a DNS host name (compose service names included).
var syslogHostRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$`)

// checkSyslog accepts "ip:port" or "hostname:port".
func checkSyslog(addr string) error {
	if ap, err := netip.ParseAddrPort(addr); err == nil {
		if ap.Port() == 0 || ap.Addr().Zone() != "" {
			return fmt.Errorf("syslog %q needs a port and no zone", addr)
		}
		return nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil || !syslogHostRE.MatchString(host) || len(host) > 253 {
		return fmt.Errorf("syslog %q must be ip:port or hostname:port", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("syslog %q: port must be 1-65535", addr)
	}
	return nil
}
