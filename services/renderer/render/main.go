package render

import (
	"path/filepath"
	"strconv"

	crossplane "github.com/nginxinc/nginx-go-crossplane"
)

// accessLogFormat is the name and layout of the access log format.
const (
	accessLogFormat = "orchestry"
	accessLogLayout = `$remote_addr [$time_local] "$request" host=$host status=$status ` +
		`bytes=$body_bytes_sent request_time=$request_time upstream=$upstream_addr ` +
		`upstream_status=$upstream_status upstream_response_time=$upstream_response_time`
)

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
	return crossplane.Directives{
		d("daemon", "off"),
		d("worker_processes", workers),
		d("pid", under("nginx.pid")),
		d("error_log", under("logs", "error.log"), "warn"),
		blk("events", nil, d("worker_connections", "4096")),
		blk("http", nil,
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
			d("log_format", accessLogFormat, accessLogLayout),
			d("access_log", under("logs", "access.log"), accessLogFormat),
			blk("map", []string{"$http_upgrade", "$connection_upgrade"},
				d("default", "upgrade"),
				d("", ""),
			),
			statusServer(opts),
			d("include", appsDir+"/*.conf"),
		),
	}
}

// statusServer is the loopback-only server for version checks, health and
// stub_status.
func statusServer(opts Options) *crossplane.Directive {
	return blk("server", nil,
		d("listen", opts.StatusListen),
		d("server_name", "orchestry-status"),
		d("access_log", "off"),
		d("allow", "127.0.0.1"),
		d("allow", "::1"),
		d("deny", "all"),
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
	)
}
