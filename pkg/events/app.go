package events

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
	// remote_addr, header:<Name> or cookie:<name>.
	HashKey         string `json:"hash_key,omitempty"`
	SessionAffinity bool   `json:"session_affinity,omitempty"`
	Stateful        bool   `json:"stateful,omitempty"`
}

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
	Draining      bool    `json:"draining,omitempty"`
	CPUPercent    float64 `json:"cpu_percent,omitempty"`
	MemoryPercent float64 `json:"memory_percent,omitempty"`
}
