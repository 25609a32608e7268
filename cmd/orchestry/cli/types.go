package cli

import (
	"encoding/json"
	"time"

	"github.com/orchestry/orchestry/pkg/events"
)

// The API's answers as the CLI reads them. Decoding is lenient: fields a
// newer API adds are ignored, and the raw answer is what -o json and
// -o yaml print.

// Instance is one backend of an app.
type Instance = events.Instance

// AppView is one app: the declared app, its instances and its revision.
type AppView struct {
	App       events.App        `json:"app"`
	Instances []events.Instance `json:"instances"`
	Revision  uint64            `json:"revision"`
}

// PutResult is the answer of PUT /v1/apps/{name}.
type PutResult struct {
	App      events.App `json:"app"`
	Warnings []string   `json:"warnings"`
	Revision uint64     `json:"revision"`
}

// InstanceResult is the answer of POST /v1/apps/{name}/instances.
type InstanceResult struct {
	Instance events.Instance `json:"instance"`
	Revision uint64          `json:"revision"`
}

// InstanceView is one instance with its health, when the health service
// has reported on it.
type InstanceView struct {
	events.Instance
	Health *events.HealthState `json:"health,omitempty"`
}

// InstancesView is the answer of GET /v1/apps/{name}/instances.
type InstancesView struct {
	Instances []InstanceView `json:"instances"`
	Revision  uint64         `json:"revision"`
}

// RoutesView is the answer of GET /v1/apps/{name}/routes.
type RoutesView struct {
	Routes   []events.Rule `json:"routes"`
	Revision uint64        `json:"revision"`
}

// CertView is one TLS domain of GET /v1/certs.
type CertView struct {
	Domain            string     `json:"domain"`
	Apps              []string   `json:"apps"`
	State             string     `json:"state"`
	Serial            string     `json:"serial,omitempty"`
	Issuer            string     `json:"issuer,omitempty"`
	NotBefore         *time.Time `json:"not_before,omitempty"`
	NotAfter          *time.Time `json:"not_after,omitempty"`
	FingerprintSHA256 string     `json:"fingerprint_sha256,omitempty"`
	IssuedAt          *time.Time `json:"issued_at,omitempty"`
	LastError         string     `json:"last_error,omitempty"`
	FailedAt          *time.Time `json:"failed_at,omitempty"`
	NextAttempt       *time.Time `json:"next_attempt,omitempty"`
}

// Node is the last render report of one NGINX node in GET /v1/status.
type Node struct {
	events.RenderReport
	ReceivedAt time.Time `json:"received_at"`
	// ServedRevisions is the app revision the node serves, per app.
	ServedRevisions map[string]uint64 `json:"served_revisions,omitempty"`
}

// StatusView is the answer of GET /v1/status.
type StatusView struct {
	Nodes []Node `json:"nodes"`
}

// Rollout is the answer of GET /v1/apps/{name}/rollout: which NGINX nodes
// serve the app's revision.
type Rollout struct {
	App      string        `json:"app"`
	Revision uint64        `json:"revision"`
	Nodes    []RolloutNode `json:"nodes"`
}

// RolloutNode is one NGINX node of a rollout.
type RolloutNode struct {
	Node           string `json:"node"`
	ServedRevision uint64 `json:"served_revision"`
	Live           bool   `json:"live"`
	Version        uint64 `json:"version"`
	Outcome        string `json:"outcome"`
	Error          string `json:"error,omitempty"`
}

// EventRecord is one event of GET /v1/events and of the event stream.
type EventRecord struct {
	Seq     uint64          `json:"seq"`
	Subject string          `json:"subject"`
	Type    string          `json:"type"`
	ID      string          `json:"id"`
	Time    time.Time       `json:"time"`
	App     string          `json:"app,omitempty"`
	Node    string          `json:"node,omitempty"`
	Domain  string          `json:"domain,omitempty"`
	Summary string          `json:"summary"`
	Data    json.RawMessage `json:"data,omitempty"`
}
