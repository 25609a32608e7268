package render

import (
	"fmt"
	"strings"

	crossplane "github.com/nginxinc/nginx-go-crossplane"
	"github.com/orchestry/orchestry/pkg/events"
)

// lbDirective is the upstream directive selecting the app's load-balancing
// method, or nil for round robin. A leftover "auto" is round robin. Some hash
// keys also need an http-level map, returned in extra.
func lbDirective(app string, spec events.AppSpec) (lb *crossplane.Directive, extra crossplane.Directives, err error) {
	switch spec.LBMethod {
	case "", events.LBRoundRobin, events.LBAuto:
		return nil, nil, nil
	case events.LBLeastConn:
		return d("least_conn"), nil, nil
	case events.LBIPHash:
		return d("ip_hash"), nil, nil
	case events.LBRandomTwoLeastConn:
		return d("random", "two", "least_conn"), nil, nil
	case events.LBHash:
		v, extra, err := hashKeyVariable(app, spec.HashKey)
		if err != nil {
			return nil, nil, fmt.Errorf("spec.hash_key: %w", err)
		}
		return d("hash", v, "consistent"), extra, nil
	}
	return nil, nil, fmt.Errorf("spec.lb_method: unknown method %q", spec.LBMethod)
}

// allowsBackup reports whether NGINX accepts "backup" servers with the
// method.
func allowsBackup(method string) bool {
	switch method {
	case events.LBHash, events.LBIPHash, events.LBRandomTwoLeastConn:
		return false
	}
	return true
}

// hashKeyVariable maps a hash key from the closed set of pkg/events to the
// NGINX variable it stands for, plus the http-level directives that define
// that variable when NGINX has no built-in one.
func hashKeyVariable(app, key string) (string, crossplane.Directives, error) {
	if err := events.CheckHashKey(key); err != nil {
		return "", nil, err
	}
	switch {
	case key == "request_uri":
		return "$request_uri", nil, nil
	case key == "remote_addr":
		return "$remote_addr", nil, nil
	case strings.HasPrefix(key, "header:"):
		h := strings.ToLower(strings.TrimPrefix(key, "header:"))
		return "$http_" + strings.ReplaceAll(h, "-", "_"), nil, nil
	case strings.HasPrefix(key, "cookie:"):
		c := strings.TrimPrefix(key, "cookie:")
		if !strings.Contains(c, "-") {
			return "$cookie_" + c, nil, nil
		}
		// '-' cannot be part of an NGINX variable name, so $cookie_<name>
		// cannot read this cookie: extract it from the Cookie header. The
		// name holds only letters, digits, '_' and '-', all literal in a
		// regex. App names hold no '_', so the variable is unique.
		v := "$orchestry_cookie_" + strings.ReplaceAll(app, "-", "_")
		return v, crossplane.Directives{
			blk("map", []string{"$http_cookie", v},
				d(cookieRegexPrefix+c+"=([^;]*)", "$1"),
				d("default", ""),
			),
		}, nil
	}
	return "", nil, fmt.Errorf("unsupported hash key %q", key)
}

// cookieRegexPrefix starts the map regex that finds a cookie in the Cookie
// header: at its start or after a separator.
const cookieRegexPrefix = "~(?:^|[; ])"
