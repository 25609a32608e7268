package events

import "time"

// App is the traffic-relevant part of an Orchestry app spec. Its JSON shape is
// the same as the matching part of Orchestry's app.yml (metadata, top-level
// healthCheck, spec.networking and the load-balancing fields), so field paths
// in validation errors read the same in the user's file and in events.
type App struct {
	Metadata    Metadata     `json:"metadata"`
	HealthCheck *HealthCheck `json:"healthCheck,omitempty"`
	Spec        AppSpec      `json:"spec"`
}

// Metadata names an app and carries free-form labels.
type Metadata struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels,omitempty"`
}

// AppSpec holds how traffic reaches the app's instances.
type AppSpec struct {
	Networking Networking `json:"networking"`
	// LBMethod is one of the LB* constants; empty means round_robin.
	LBMethod string `json:"lb_method,omitempty"`
	// HashKey selects the key for the hash method: request_uri,
	// remote_addr, header:<Name> or cookie:<name>. With SessionAffinity,
	// a cookie:<name> key pins clients by that cookie.
	HashKey string `json:"hash_key,omitempty"`
	// SessionAffinity keeps each client on one instance: by its address
	// (ip_hash), or by the cookie HashKey names (a consistent hash of it).
	// It decides the method when lb_method is empty, round_robin or auto.
	SessionAffinity bool `json:"session_affinity,omitempty"`
	// Stateful makes lb_method auto a consistent hash of the client
	// address, so clients keep their instance when instances come and go.
	Stateful bool `json:"stateful,omitempty"`
	// Retries says when NGINX sends a failed request to another instance;
	// nil retries on connection errors and timeouts, on every instance at
	// most once.
	Retries *Retries `json:"retries,omitempty"`
	// RateLimit bounds the request rate of each client address; nil is no
	// limit.
	RateLimit *RateLimit `json:"rate_limit,omitempty"`
	// MaxConns caps the concurrent connections NGINX opens to each
	// instance (1-100000; 0 is no cap). An instance whose load band
	// (from instance.stats) is higher gets a smaller share: 4/4, 3/4, 2/4
	// or 1/4 of it for bands 1 to 4. When every instance is at its cap,
	// NGINX answers 502.
	MaxConns int `json:"max_conns,omitempty"`
	// ConnLimit bounds the concurrent connections of each client address
	// (1-100000); 0 is no limit. Refused requests get 429.
	ConnLimit int `json:"conn_limit,omitempty"`
	// Rules route matching requests (by path and headers) to this app or
	// to another declared app; the enabled rule with the highest priority
	// that matches wins (ties by id), and a request no rule matches goes to
	// this app. At most 64.
	Rules []Rule `json:"rules,omitempty"`
}

// Rule is one routing rule of an app.
type Rule struct {
	// ID names the rule within the app (name grammar, unique).
	ID    string    `json:"id"`
	Match RuleMatch `json:"match"`
	// Target is the app whose instances receive the matching requests;
	// empty (or the app's own name) is this app. A target that is not
	// declared or has no instance to serve answers 503.
	Target string `json:"target,omitempty"`
	// Priority orders the rules: higher first, ties by id
	// (-1000000..1000000).
	Priority int `json:"priority,omitempty"`
	// Enabled switches the rule off when false; nil is true.
	Enabled *bool `json:"enabled,omitempty"`
	// Split sends a share of the matching requests to another app (A/B
	// tests and canaries); nil sends them all to Target.
	Split *Split `json:"split,omitempty"`

	// The settings below apply to the requests the rule routes; each one
	// left unset is the app's.

	// RateLimit bounds the request rate of each client address on this
	// rule's requests, in addition to the app's own limit.
	RateLimit *RateLimit `json:"rate_limit,omitempty"`
	// Headers are response headers added to this rule's responses, after
	// the app's: a name set in both takes the rule's value (at most 64).
	Headers map[string]string `json:"headers,omitempty"`
	// Timeout is the upstream read and send timeout in seconds (0-3600).
	Timeout float64 `json:"timeout,omitempty"`
	// MaxBodySize is the largest request body, an NGINX size like the
	// app's.
	MaxBodySize string `json:"max_body_size,omitempty"`
}

// HasSettings reports whether the rule sets any of its own request
// settings (rate limit, headers, timeout or body size).
func (r Rule) HasSettings() bool {
	return r.RateLimit != nil || len(r.Headers) > 0 || r.Timeout != 0 || r.MaxBodySize != ""
}

// Split is a weighted split of a rule's requests: Percent of them go to
// Target, the rest to the rule's own target.
type Split struct {
	// Target is the app receiving the share (name grammar; not the rule's
	// own target). Like a rule target, one that is not declared or has no
	// instance answers 503 for its share.
	Target string `json:"target"`
	// Percent is the share, more than 0 and less than 100, in steps of
	// 0.01.
	Percent float64 `json:"percent"`
	// Sticky keeps a client on its variant; nil splits every request on its
	// own.
	Sticky *Sticky `json:"sticky,omitempty"`
}

// Sticky names the request value that decides a client's variant: exactly
// one of a cookie or a header. A request without it (or with it empty) is
// placed by its client address instead.
type Sticky struct {
	// Cookie is a cookie name (1-64 letters, digits, '_' or '-').
	Cookie string `json:"cookie,omitempty"`
	// Header is a request header name.
	Header string `json:"header,omitempty"`
}

// IsEnabled reports whether the rule takes part in routing.
func (r Rule) IsEnabled() bool { return r.Enabled == nil || *r.Enabled }

// RuleMatch is what a request must have for a rule to apply: its path and
// every listed header.
type RuleMatch struct {
	// PathType is prefix (the default), exact or regex. Paths are matched
	// against the normalised, percent-decoded request path, case-sensitively.
	PathType string `json:"path_type,omitempty"`
	// Path is the prefix or exact path (starting with '/'), or the regex;
	// empty with prefix matches every path.
	Path string `json:"path,omitempty"`
	// Headers must all match (at most 8).
	Headers []HeaderMatch `json:"headers,omitempty"`
}

// HeaderMatch is a condition on one request header.
type HeaderMatch struct {
	Name string `json:"name"`
	// Type is exact (the default: the whole value, case-sensitive), regex,
	// or exists (present and not empty; Value must be empty).
	Type  string `json:"type,omitempty"`
	Value string `json:"value,omitempty"`
}

// Path and header match types of a Rule.
const (
	MatchPrefix = "prefix"
	MatchExact  = "exact"
	MatchRegex  = "regex"
	MatchExists = "exists"
)

// Limits of the rules of one app.
const (
	MaxRules        = 64
	MaxRuleHeaders  = 8
	MaxRulePriority = 1000000
	maxRegexLength  = 256
)

// Retries is NGINX's proxy_next_upstream for an app.
type Retries struct {
	// Conditions lists when to try the next instance: error, timeout,
	// invalid_header, http_500, http_502, http_503, http_504, http_403,
	// http_404, http_429, and non_idempotent (also retry POST, LOCK, PATCH:
	// only when the app can take a request twice); ["off"] never retries.
	// Empty means error and timeout.
	Conditions []string `json:"conditions,omitempty"`
	// Tries bounds the attempts of one request, the first included (1-100);
	// 0 tries each instance at most once.
	Tries int `json:"tries,omitempty"`
	// Timeout bounds the time for all attempts of one request, in seconds
	// (0-3600); 0 is no bound.
	Timeout float64 `json:"timeout,omitempty"`
}

// RateLimit is a request rate limit per client address (NGINX limit_req,
// nodelay: a burst is served at once, requests beyond it get 429).
type RateLimit struct {
	// RequestsPerSecond is the sustained rate (1-100000).
	RequestsPerSecond int `json:"requests_per_second"`
	// Burst is how many requests above the rate are let through at once
	// (0-100000).
	Burst int `json:"burst,omitempty"`
}

// RetryConditions are the accepted values of Retries.Conditions.
var RetryConditions = []string{"error", "timeout", "invalid_header", "http_500", "http_502", "http_503",
	"http_504", "http_403", "http_404", "http_429", "non_idempotent", "off"}

// Load-balancing methods accepted in AppSpec.LBMethod.
const (
	LBRoundRobin         = "round_robin"
	LBLeastConn          = "least_conn"
	LBIPHash             = "ip_hash"
	LBHash               = "hash"
	LBRandomTwoLeastConn = "random_two_least_conn"
	LBAuto               = "auto"
)

// Networking is where and how NGINX serves the app.
type Networking struct {
	// ExternalPort is the port the app's NGINX server listens on.
	ExternalPort int    `json:"external_port,omitempty"`
	Domain       string `json:"domain,omitempty"`
	SSL          SSL    `json:"ssl,omitzero"`
	// MaxBodySize is an NGINX size: digits with an optional k, m or g suffix.
	MaxBodySize string `json:"max_body_size,omitempty"`
	// Timeout is the upstream read and send timeout in seconds.
	Timeout float64 `json:"timeout,omitempty"`
	// Headers are response headers added to every response of the app.
	Headers map[string]string `json:"headers,omitempty"`
}

// SSL switches TLS on for the app's server.
type SSL struct {
	Enabled bool `json:"enabled"`
	// HSTS adds Strict-Transport-Security (one year) to every response,
	// unless the app's headers set it themselves.
	HSTS bool `json:"hsts,omitempty"`
	// RedirectHTTP answers plain HTTP on port 80 for the domain with a 308
	// to the HTTPS server.
	RedirectHTTP bool `json:"redirect_http,omitempty"`
}

// HealthCheck is Orchestry's health check spec for the app's instances.
type HealthCheck struct {
	Path                string   `json:"path,omitempty"`
	Port                int      `json:"port,omitempty"`
	Protocol            string   `json:"protocol,omitempty"`
	Method              string   `json:"method,omitempty"`
	Headers             []Header `json:"headers,omitempty"`
	ExpectedStatusCodes []int    `json:"expectedStatusCodes,omitempty"`
	// ExpectedBody, when set, must appear in the first 4 KiB of an HTTP
	// probe's response body for the probe to pass (1-256 bytes of UTF-8).
	ExpectedBody        string  `json:"expectedBody,omitempty"`
	InitialDelaySeconds float64 `json:"initialDelaySeconds,omitempty"`
	PeriodSeconds       float64 `json:"periodSeconds,omitempty"`
	TimeoutSeconds      float64 `json:"timeoutSeconds,omitempty"`
	FailureThreshold    int     `json:"failureThreshold,omitempty"`
	SuccessThreshold    int     `json:"successThreshold,omitempty"`
}

// Header is one HTTP header name and value.
type Header struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Instance is one running copy of an app that NGINX can send traffic to.
type Instance struct {
	ID   string `json:"id"`
	IP   string `json:"ip"`
	Port int    `json:"port"`
	// Weight is the static NGINX server weight (1-1000); 0 means 1.
	Weight int `json:"weight,omitempty"`
	// Backup marks a standby: NGINX sends it traffic only while the app's
	// other instances are unavailable. Methods that NGINX does not allow
	// backups with (hash, ip_hash, random) serve it like the others. The
	// renderer also sets it on ejected instances it keeps under the panic
	// floor.
	Backup bool `json:"backup,omitempty"`
	// Draining marks an instance being taken out of service: it gets no
	// new traffic (requests in flight finish on NGINX's old workers), and
	// the health service stops probing it and reports it draining.
	// Registering it again without the flag brings it back through its
	// health check; deregistering it removes it.
	Draining bool `json:"draining,omitempty"`
	// LoadBand is set by routing from instance.stats reports: 1 (light) to
	// 4 (saturated), from the larger of CPU and memory use, with hysteresis
	// and a minimum interval between changes; 0 when it never reported. The
	// renderer weighs an instance by it when any instance of the app has
	// one.
	LoadBand int `json:"load_band,omitempty"`
	// LoadBandSince is when LoadBand last changed.
	LoadBandSince time.Time `json:"load_band_since,omitzero"`
	CPUPercent    float64   `json:"cpu_percent,omitempty"`
	MemoryPercent float64   `json:"memory_percent,omitempty"`
}
