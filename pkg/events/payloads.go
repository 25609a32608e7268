package events

import "time"

// RoutingState is the data of routing.changed.<app>: the whole resolved
// state of one app after a change. Deleted marks the app's removal; App then
// holds only its name.
type RoutingState struct {
	App       App        `json:"app"`
	Instances []Instance `json:"instances,omitempty"`
	Deleted   bool       `json:"deleted,omitempty"`
	// Revision increases with every change of this app.
	Revision uint64 `json:"revision"`
	// Auto is routing's current choice for an app declared with lb_method
	// auto (without session affinity or stateful); App.Spec.LBMethod is
	// already its method. Nil before any choice, or for other apps.
	Auto *AutoChoice `json:"auto,omitempty"`
}

// AutoChoice is what routing chose for an app declared with lb_method auto,
// from its traffic windows (metrics.upstream): least_conn while the
// request rate is high, round_robin otherwise, and weight factors when
// the instances' latencies differ widely. A choice changes only after
// several windows in a row agree on a new one, and not more often than a
// minimum interval.
type AutoChoice struct {
	// Method is round_robin or least_conn.
	Method string `json:"method"`
	// Weights, when set, are weight factors per instance id, 1 (slowest)
	// to 4 (fastest); the renderer multiplies the instance's weight by
	// it, and an instance not listed counts 4.
	Weights map[string]int `json:"weights,omitempty"`
	// Reason says which rule made the choice, for people.
	Reason string `json:"reason,omitempty"`
	// Since is when the choice was made.
	Since time.Time `json:"since"`
}

// MaxAutoWeight is the weight factor of an app's fastest instances under
// an AutoChoice.
const MaxAutoWeight = 4

// InstanceRegistration is the data of instance.registered.<app>: add the
// instance, or replace the one with the same id.
type InstanceRegistration struct {
	Instance Instance `json:"instance"`
}

// InstanceRemoval is the data of instance.deregistered.<app>.
type InstanceRemoval struct {
	ID string `json:"id"`
}

// StatsReport is the data of instance.stats.<app>: resource figures of one
// instance, reported by another system (orchestrator, agent).
type StatsReport struct {
	InstanceID    string    `json:"instance_id"`
	CPUPercent    float64   `json:"cpu_percent"`
	MemoryPercent float64   `json:"memory_percent"`
	ObservedAt    time.Time `json:"observed_at"`
}

// Health states of an instance.
const (
	HealthHealthy   = "healthy"
	HealthUnhealthy = "unhealthy"
	HealthEjected   = "ejected"
	HealthDraining  = "draining"
)

// HealthState is the data of instance.health.<app>: the whole health state of
// one instance after a transition.
type HealthState struct {
	App                  string    `json:"app"`
	InstanceID           string    `json:"instance_id"`
	State                string    `json:"state"`
	ConsecutiveSuccesses int       `json:"consecutive_successes"`
	ConsecutiveFailures  int       `json:"consecutive_failures"`
	LastError            string    `json:"last_error,omitempty"`
	LastLatencyMS        float64   `json:"last_latency_ms"`
	Since                time.Time `json:"since"`
	Revision             uint64    `json:"revision"`
	// Ejections is how many ejections in a row the current or last one
	// was (its time is the base time doubled Ejections-1 times); 0 when
	// the instance was never ejected.
	Ejections int `json:"ejections,omitempty"`
	// EjectedUntil is when an ejection ends: from then on the instance's
	// next passing probe returns it to service. Set only while ejected.
	EjectedUntil *time.Time `json:"ejected_until,omitempty"`
}

// Outcomes of a render attempt, in RenderReport.Outcome.
const (
	// OutcomeApplied: the new config passed nginx -t, was reloaded and is live.
	OutcomeApplied = "applied"
	// OutcomeUnchanged: the rendered config was byte-identical; no reload.
	OutcomeUnchanged = "unchanged"
	// OutcomeInvalid: nginx -t refused the config; the previous one serves.
	OutcomeInvalid = "invalid"
	// OutcomeFailed: reload or live confirmation failed; the previous
	// config was restored.
	OutcomeFailed = "failed"
)

// RenderReport is the data of config.rendered.<node>: the result of one
// render, validate and reload cycle on an NGINX node.
type RenderReport struct {
	Node string `json:"node"`
	// Version is the config version now live on the node.
	Version uint64 `json:"version"`
	// Attempted is the version this cycle tried to make live.
	Attempted uint64 `json:"attempted"`
	// Hash identifies the attempted config: every file, the node's own
	// settings included, and the certificate files it points at.
	Hash string `json:"hash"`
	// RoutingHash identifies the live config's routing part (every app's
	// file and the certificate files): nodes serving the same state have
	// the same RoutingHash, while Version counts each node's own reloads.
	// Empty until the node has rendered once.
	RoutingHash string  `json:"routing_hash,omitempty"`
	Outcome     string  `json:"outcome"`
	Error       string  `json:"error,omitempty"`
	Apps        int     `json:"apps"`
	RenderMS    float64 `json:"render_ms"`
	ValidateMS  float64 `json:"validate_ms"`
	ReloadMS    float64 `json:"reload_ms"`
	// Revision increases with every report of this node.
	Revision uint64 `json:"revision"`
	// Problems are the apps (or parts of them) left out of this config so
	// the others could go live, each with the reason.
	Problems []AppProblem `json:"problems,omitempty"`
	// StatusAddr is the "ip:port" of the node's NGINX status server
	// (stub_status at /_status), for the metrics service to scrape; empty
	// when not given.
	StatusAddr string `json:"status_addr,omitempty"`
	// LiveAt is when the node confirmed the config serving Served: NGINX
	// answered with Version (applied), or the renderer found the rendered
	// config identical to the live one (unchanged). Unset otherwise.
	LiveAt *time.Time `json:"live_at,omitempty"`
	// Served are the apps this report is the first to show served at
	// LiveAt: those with a routing.changed the node had not served before
	// (a deleted app is served once its config is gone). Only on applied
	// and unchanged outcomes.
	Served []ServedChange `json:"served,omitempty"`
}

// ServedChange says that a node serves an app's routing state up to
// Revision, and since when the oldest of the changes it serves for the
// first time had been waiting: the metrics service observes LiveAt minus
// ChangedAt as the change's convergence time.
type ServedChange struct {
	App string `json:"app"`
	// Revision is the app's routing.changed revision now served.
	Revision uint64 `json:"revision"`
	// ChangedAt is the publish time (envelope time) of the oldest
	// routing.changed of App that this config is the first to serve; the
	// zero time when all of them were published before the renderer
	// started (a replay, which is reported served but not timed).
	ChangedAt time.Time `json:"changed_at"`
}

// AppProblem is why an app, or part of it, was left out of a config.
type AppProblem struct {
	App    string `json:"app"`
	Reason string `json:"reason"`
}

// Certificate is the data of cert.issued.<domain>. It never carries the
// private key.
type Certificate struct {
	Domain            string    `json:"domain"`
	Serial            string    `json:"serial"`
	NotBefore         time.Time `json:"not_before"`
	NotAfter          time.Time `json:"not_after"`
	Issuer            string    `json:"issuer"`
	FingerprintSHA256 string    `json:"fingerprint_sha256"`
}

// CertFailure is the data of cert.failed.<domain>.
type CertFailure struct {
	Domain      string    `json:"domain"`
	Reason      string    `json:"reason"`
	NextAttempt time.Time `json:"next_attempt"`
}

// UpstreamMetrics is the data of metrics.upstream.<app>: traffic figures of
// one app over one window.
type UpstreamMetrics struct {
	App           string            `json:"app"`
	WindowStart   time.Time         `json:"window_start"`
	WindowSeconds float64           `json:"window_seconds"`
	Instances     []InstanceTraffic `json:"instances,omitempty"`
}

// InstanceTraffic is the traffic of one upstream address within a window.
// Every attempt NGINX made counts, retries included: a request that failed
// on one instance and succeeded on the next counts once for each.
type InstanceTraffic struct {
	// Address is the upstream "ip:port" ("[v6]:port") NGINX sent to.
	Address string `json:"address"`
	// Requests is the number of attempts sent to Address in the window.
	Requests  int64   `json:"requests"`
	P50MS     float64 `json:"p50_ms"`
	P95MS     float64 `json:"p95_ms"`
	P99MS     float64 `json:"p99_ms"`
	Status2xx int64   `json:"status_2xx"`
	Status3xx int64   `json:"status_3xx"`
	Status4xx int64   `json:"status_4xx"`
	Status5xx int64   `json:"status_5xx"`
	// GatewayErrors counts attempts that ended in 502, 503 or 504,
	// including the ones NGINX produced itself (connection refused, reset,
	// timeout).
	GatewayErrors int64 `json:"gateway_errors"`
	// Consecutive5xx is the run of 5xx attempts at the end of the window,
	// carried across windows until a non-5xx attempt ends it.
	Consecutive5xx int64 `json:"consecutive_5xx"`
	// ConsecutiveGatewayErrors is the same run counted for gateway errors.
	ConsecutiveGatewayErrors int64 `json:"consecutive_gateway_errors"`
	// Retries counts attempts that were not the first of their request.
	Retries int64 `json:"retries"`
	Bytes   int64 `json:"bytes"`
}

// Rejection is the data of rejected.<subject>: why a consumer refused an
// event. Nothing of the refused event was applied.
type Rejection struct {
	Subject string `json:"subject"`
	// EventID is the refused envelope's id, when it could be read.
	EventID string `json:"event_id,omitempty"`
	Type    string `json:"type,omitempty"`
	Reason  string `json:"reason"`
	// By is the consumer that refused it.
	By string `json:"by"`
}

// AppRecord is the value stored per app in BucketApps: the app and its
// instances. The KV revision of the entry is the app's revision.
type AppRecord struct {
	App       App        `json:"app"`
	Instances []Instance `json:"instances,omitempty"`
	// Auto is routing's choice for an app declared with lb_method auto.
	Auto *AutoChoice `json:"auto,omitempty"`
}
