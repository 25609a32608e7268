package events

// Subject builders. Every subject ends with the entity it is about, so
// consumers filter cheaply with wildcards (see the *Wildcard constants). App
// and node names are single tokens (DNS labels); a domain spans several
// tokens, so the cert families use '>'. Callers validate names before
// building subjects.

// Subject families, as NATS wildcard filters.
const (
	RoutingChangedWildcard       = "routing.changed.*"
	InstanceRegisteredWildcard   = "instance.registered.*"
	InstanceDeregisteredWildcard = "instance.deregistered.*"
	InstanceStatsWildcard        = "instance.stats.*"
	InstanceHealthWildcard       = "instance.health.*"
	ConfigRenderedWildcard       = "config.rendered.*"
	CertIssuedWildcard           = "cert.issued.>"
	CertFailedWildcard           = "cert.failed.>"
	MetricsUpstreamWildcard      = "metrics.upstream.*"
	RejectedWildcard             = "rejected.>"
	// RendererConfigWildcard is request/reply, not an event family: see
	// RendererConfig.
	RendererConfigWildcard = "renderer.config.*"
)

// RoutingChanged is the subject of the resolved state of app.
func RoutingChanged(app string) string { return "routing.changed." + app }

// InstanceRegistered is the subject on which anyone registers an instance of app.
func InstanceRegistered(app string) string { return "instance.registered." + app }

// InstanceDeregistered is the subject on which anyone removes an instance of app.
func InstanceDeregistered(app string) string { return "instance.deregistered." + app }

// InstanceStats is the subject for CPU and memory figures of app's instances.
func InstanceStats(app string) string { return "instance.stats." + app }

// InstanceHealth is the subject of health transitions of app's instances.
func InstanceHealth(app string) string { return "instance.health." + app }

// ConfigRendered is the subject of render reports from NGINX node node.
func ConfigRendered(node string) string { return "config.rendered." + node }

// CertIssued is the subject announcing a new certificate for domain.
func CertIssued(domain string) string { return "cert.issued." + CertKey(domain) }

// CertFailed is the subject announcing a failed issuance for domain.
func CertFailed(domain string) string { return "cert.failed." + CertKey(domain) }

// MetricsUpstream is the subject of periodic traffic figures of app.
func MetricsUpstream(app string) string { return "metrics.upstream." + app }

// Rejected is the subject on which a consumer answers an event it refused
// that arrived on subject: "rejected." followed by the original subject. The
// prefix keeps rejections out of every other family's wildcard, so a consumer
// never receives (and rejects again) its own answers.
func Rejected(subject string) string { return "rejected." + subject }

// RendererConfig is the request subject on which the renderer of NGINX
// node node answers with its live config (NodeConfig, JSON). It is core
// NATS request/reply, not an event: nothing is stored in a stream. Only
// routing may ask (PermissionsOf); the renderer answers with
// allow_responses, to the requester's inbox alone.
func RendererConfig(node string) string { return "renderer.config." + node }
