package render

import (
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"

	crossplane "github.com/nginxinc/nginx-go-crossplane"
)

// Access log formats: a plain line for the local file, and one JSON object
// per request for the metrics service.
const (
	accessLogFormat = "orchestry"
	accessLogLayout = `$remote_addr [$time_local] "$request" host=$host status=$status ` +
		`bytes=$body_bytes_sent request_time=$request_time upstream=$upstream_addr ` +
		`upstream_status=$upstream_status upstream_response_time=$upstream_response_time`
	jsonLogFormat = "orchestry_json"
	// appVariable holds the app a request belongs to, set in each server.
	appVariable = "$orchestry_app"
	// configVersionVariable is the live config's version (ConfigVersionFile).
	configVersionVariable = "$orchestry_config_version"
)

// AccessLogFields are the keys of a JSON access log line, in order, with the
// NGINX variable each holds. "node" and "v" are literals. "config_version"
// is the version the applier staged the config under (known only then, so
// it is set by an included file outside the config's hash). The upstream
// fields are lists when NGINX tried several instances ("a, b", groups of an
// internal redirect joined by " : ").
var AccessLogFields = [][2]string{
	{"app", appVariable},
	{"ts", "$msec"},
	{"status", "$status"},
	{"request_time", "$request_time"},
	{"upstream_addr", "$upstream_addr"},
	{"upstream_status", "$upstream_status"},
	{"upstream_connect_time", "$upstream_connect_time"},
	{"upstream_header_time", "$upstream_header_time"},
	{"upstream_response_time", "$upstream_response_time"},
	{"bytes_sent", "$bytes_sent"},
	{"config_version", configVersionVariable},
}

// jsonLogLayout is the escape=json layout: {"v":1,"node":NODE,...}. The node
// name is checked by Options.validate, so it is a plain literal.
func jsonLogLayout(node string) string {
	var b strings.Builder
	b.WriteString(`{"v":1,"node":"` + node + `"`)
	for _, f := range AccessLogFields {
		b.WriteString(`,"` + f[0] + `":"` + f[1] + `"`)
	}
	b.WriteString("}")
	return b.String()
}

// accessLog is the http-level access_log: syslog to the metrics service, or
// a local file.
func accessLog(opts Options, under func(...string) string) crossplane.Directives {
	node := opts.Node
	if node == "" {
		node = "local"
	}
	out := crossplane.Directives{
		d("include", ConfigVersionName),
		d("log_format", accessLogFormat, accessLogLayout),
		d("log_format", jsonLogFormat, "escape=json", jsonLogLayout(node)),
	}
	if opts.Syslog == "" {
		return append(out, d("access_log", under("logs", "access.log"), accessLogFormat))
	}
	return append(out, d("access_log", "syslog:server="+opts.Syslog+",tag=orchestry,nohostname", jsonLogFormat))
}

// mainConfig is nginx.conf: the main and events contexts, http-level
// settings, the internal status server and the include of every app file.
func mainConfig(opts Options, apps int) crossplane.Directives {
	workers := "auto"
	if opts.WorkerProcesses > 0 {
		workers = strconv.Itoa(opts.WorkerProcesses)
	}
	under := func(p ...string) string { return filepath.Join(append([]string{opts.Prefix}, p...)...) }
	// server_names_hash must hold every app's server name.
	namesMax := 1024
	for namesMax < 4*apps {
		namesMax *= 2
	}
	http := crossplane.Directives{
		d("default_type", "application/octet-stream"),
		d("server_tokens", "off"),
		d("sendfile", "on"),
		d("tcp_nopush", "on"),
		d("keepalive_timeout", "65s"),
		d("server_names_hash_bucket_size", "512"),
		d("server_names_hash_max_size", strconv.Itoa(namesMax)),
		d("client_body_temp_path", under("temp", "client_body")),
		d("proxy_temp_path", under("temp", "proxy")),
		d("fastcgi_temp_path", under("temp", "fastcgi")),
		d("uwsgi_temp_path", under("temp", "uwsgi")),
		d("scgi_temp_path", under("temp", "scgi")),
	}
	http = append(http, accessLog(opts, under)...)
	// TLS for every app with ssl.enabled: Mozilla's "intermediate" protocols
	// (the ciphers are OpenSSL's defaults), one session cache for all.
	http = append(http,
		d("ssl_protocols", "TLSv1.2", "TLSv1.3"),
		d("ssl_prefer_server_ciphers", "off"),
		d("ssl_session_cache", "shared:orchestry_tls:10m"),
		d("ssl_session_timeout", "1d"),
		d("ssl_session_tickets", "off"),
	)
	http = append(http,
		blk("map", []string{"$http_upgrade", "$connection_upgrade"},
			d("default", "upgrade"),
			d("", ""),
		),
		statusServer(opts),
		d("include", appsDir+"/*.conf"),
	)
	return crossplane.Directives{
		d("daemon", "off"),
		d("worker_processes", workers),
		d("pid", under("nginx.pid")),
		d("error_log", under("logs", "error.log"), "warn"),
		blk("events", nil, d("worker_connections", "4096")),
		blk("http", nil, http...),
	}
}

// statusServer is the server for version checks, health and stub_status:
// on loopback, or on an internal address where only loopback and private
// networks may ask (internalNetworks).
func statusServer(opts Options) *crossplane.Directive {
	body := crossplane.Directives{
		d("listen", opts.StatusListen),
		d("server_name", "orchestry-status"),
		d("access_log", "off"),
		// Declares the variable the JSON log format reads, for a config
		// without apps.
		d("set", appVariable, ""),
		d("allow", "127.0.0.1"),
		d("allow", "::1"),
	}
	if ap := netip.MustParseAddrPort(opts.StatusListen); !ap.Addr().IsLoopback() {
		for _, n := range internalNetworks {
			body = append(body, d("allow", n))
		}
	}
	body = append(body, d("deny", "all"))
	return blk("server", nil, append(body,
		blk("location", []string{"=", "/_orchestry/version"},
			d("default_type", "text/plain"),
			d("include", VersionName),
		),
		blk("location", []string{"=", "/_health"},
			d("default_type", "text/plain"),
			d("return", "200", "ok\n"),
		),
		blk("location", []string{"=", "/_status"},
			d("stub_status"),
		),
		blk("location", []string{"/"},
			d("return", "404"),
		),
	)...)
}

// internalNetworks are the private address ranges (RFC 1918, RFC 4193) that
// may reach a status server listening beyond loopback.
var internalNetworks = []string{"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"}
