package eventsdoc

import (
	"fmt"
	"time"

	"github.com/orchestry/orchestry/pkg/events"
)

// Example is one realistic event of a family: the subject it is published
// on and its envelope, built with events.NewEnvelope as the services build
// theirs.
type Example struct {
	// Subject is the subject it is published on.
	Subject string
	// Envelope is the event, with a fixed id and time.
	Envelope events.Envelope
}

// at is the time of every example, so the catalogue is reproducible.
var at = time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC)

// Examples returns one example per family of events.Catalogue, keyed by
// CloudEvents type.
func Examples() (map[string]Example, error) {
	instance := events.Instance{ID: "shop-7d9f", IP: "10.0.3.17", Port: 8080, Weight: 2}
	live := at.Add(-400 * time.Millisecond)
	list := []struct {
		source, subject string
		payload         events.Payload
		id              string
	}{
		{"routing", events.RoutingChanged("shop"), events.RoutingState{
			App: events.App{
				Metadata:    events.Metadata{Name: "shop", Labels: map[string]string{"team": "web"}},
				HealthCheck: &events.HealthCheck{Path: "/healthz", PeriodSeconds: 5, FailureThreshold: 3, SuccessThreshold: 2},
				Spec: events.AppSpec{
					Networking: events.Networking{ExternalPort: 80, Domain: "shop.example.com", Timeout: 30},
					LBMethod:   events.LBLeastConn,
				},
			},
			Instances: []events.Instance{instance, {ID: "shop-2b41", IP: "10.0.3.18", Port: 8080, Weight: 2}},
			Revision:  42,
		}, "routing-shop-42"},
		{"orchestrator", events.InstanceRegistered("shop"), events.InstanceRegistration{Instance: instance}, ""},
		{"orchestrator", events.InstanceDeregistered("shop"), events.InstanceRemoval{ID: "shop-2b41"}, ""},
		{"orchestrator", events.InstanceStats("shop"), events.StatsReport{InstanceID: "shop-7d9f", CPUPercent: 63.5, MemoryPercent: 41.2, ObservedAt: at.Add(-2 * time.Second)}, ""},
		{"health/health-0", events.InstanceHealth("shop"), events.HealthState{
			App: "shop", InstanceID: "shop-2b41", State: events.HealthUnhealthy, ConsecutiveFailures: 3,
			LastError: "GET /healthz: connection refused", LastLatencyMS: 0.4, Since: at, Revision: 118,
		}, ""},
		{"renderer/edge-1", events.ConfigRendered("edge-1"), events.RenderReport{
			Node: "edge-1", Version: 57, Attempted: 57, Hash: "5b0c9d4e8a71f2c6", Outcome: events.OutcomeApplied, Apps: 3,
			RenderMS: 2.1, ValidateMS: 38.7, ReloadMS: 112.4, Revision: 57, StatusAddr: "10.0.1.5:8081", LiveAt: &live,
			Served: []events.ServedChange{{App: "shop", Revision: 42, ChangedAt: at.Add(-900 * time.Millisecond)}},
		}, ""},
		{"certs/certs-0", events.CertIssued("shop.example.com"), events.Certificate{
			Domain: "shop.example.com", Serial: "4f1a9c2e77d03b15", NotBefore: at, NotAfter: at.Add(90 * 24 * time.Hour),
			Issuer: "Orchestry local CA", FingerprintSHA256: "9e2b5c7d1a4f8e3b6c0d2a5f7e9b1c3d5a7f9e1b3c5d7a9f0e2b4c6d8a0f2e4b",
		}, ""},
		{"certs/certs-0", events.CertFailed("shop.example.com"), events.CertFailure{
			Domain: "shop.example.com", Reason: "acme: HTTP-01 challenge: connection refused", NextAttempt: at.Add(10 * time.Minute),
		}, ""},
		{"metrics", events.MetricsUpstream("shop"), events.UpstreamMetrics{
			App: "shop", WindowStart: at.Add(-10 * time.Second), WindowSeconds: 10,
			Instances: []events.InstanceTraffic{{
				Address: "10.0.3.17:8080", Requests: 1520, P50MS: 4.2, P95MS: 18.9, P99MS: 41.3,
				Status2xx: 1497, Status3xx: 8, Status4xx: 12, Status5xx: 3, GatewayErrors: 1, Retries: 1, Bytes: 3145728,
			}},
		}, ""},
		{"routing", events.Rejected(events.InstanceRegistered("shop")), events.Rejection{
			Subject: events.InstanceRegistered("shop"), EventID: "6a0f3c1e-5b7d-4e2a-9c8f-1d2e3f4a5b6c",
			Type: "io.orchestry.instance.registered.v1", Reason: "event rejected: data: invalid: instance.ip: must be an IPv4 or IPv6 address",
			By: "routing",
		}, ""},
	}
	out := map[string]Example{}
	for i, e := range list {
		env, err := events.NewEnvelope(e.source, e.subject, e.payload)
		if err != nil {
			return nil, fmt.Errorf("example %s: %w", e.subject, err)
		}
		// A fixed id and time, so the catalogue is reproducible; services
		// keep NewEnvelope's (routing's outbox sets its own id, as here).
		env.ID = e.id
		if env.ID == "" {
			env.ID = fmt.Sprintf("0190c3a4-7b2e-7c1d-9f4a-%012x", 0x5e0d17a3b000+i)
		}
		env.Time = at
		out[env.Type] = Example{Subject: e.subject, Envelope: env}
	}
	return out, nil
}
