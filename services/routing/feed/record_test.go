package feed

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/orchestry/orchestry/pkg/events"
)

// decoded wraps p as the publisher would and decodes it as a consumer.
func decoded(t *testing.T, subject string, p events.Payload) events.Event {
	t.Helper()
	env, err := events.NewEnvelope("test", subject, p)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := events.Decode(subject, raw)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func TestRecordSummaries(t *testing.T) {
	now := time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)
	until := now.Add(time.Minute)
	for _, tc := range []struct {
		subject        string
		payload        events.Payload
		app, node, dom string
		summary        string
	}{
		{subject: "routing.changed.demo", payload: events.RoutingState{App: events.App{Metadata: events.Metadata{Name: "demo"}}, Deleted: true, Revision: 12},
			app: "demo", summary: "app demo deleted (revision 12)"},
		{subject: "instance.registered.demo", payload: events.InstanceRegistration{Instance: events.Instance{ID: "demo-2", IP: "10.0.0.2", Port: 8080}},
			app: "demo", summary: "instance demo-2 of demo registered at 10.0.0.2:8080"},
		{subject: "instance.deregistered.demo", payload: events.InstanceRemoval{ID: "demo-2"},
			app: "demo", summary: "instance demo-2 of demo deregistered"},
		{subject: "instance.health.demo", payload: events.HealthState{App: "demo", InstanceID: "demo-2", State: events.HealthUnhealthy,
			LastError: "connection refused", Since: now, Revision: 3}, app: "demo", summary: "instance demo-2 unhealthy: connection refused"},
		{subject: "instance.health.demo", payload: events.HealthState{App: "demo", InstanceID: "demo-2", State: events.HealthEjected,
			Ejections: 2, EjectedUntil: &until, Since: now, Revision: 4}, app: "demo", summary: "instance demo-2 ejected until 2026-12-07T03:01:00Z (ejection 2 in a row)"},
		{subject: "config.rendered.nginx-1", payload: events.RenderReport{Node: "nginx-1", Version: 12, Attempted: 12, Hash: "h", Outcome: events.OutcomeApplied,
			Apps: 3, RenderMS: 1.2, ValidateMS: 30, ReloadMS: 9.6, Revision: 1}, node: "nginx-1", summary: "node nginx-1 applied version 12 (3 apps) in 41 ms"},
		{subject: "config.rendered.nginx-1", payload: events.RenderReport{Node: "nginx-1", Version: 12, Attempted: 13, Hash: "h", Outcome: events.OutcomeInvalid,
			Error: "nginx -t: bad\nmore", Apps: 3, Revision: 2}, node: "nginx-1", summary: "node nginx-1 refused version 13 as invalid, version 12 stays live: nginx -t: bad"},
		{subject: "cert.issued.example.com", payload: events.Certificate{Domain: "example.com", Serial: "1", NotBefore: now, NotAfter: now.Add(24 * time.Hour),
			Issuer: "Orchestry CA", FingerprintSHA256: strings.Repeat("ab", 32)}, dom: "example.com",
			summary: "certificate for example.com issued by Orchestry CA, valid until 2026-12-08T03:00:00Z"},
		{subject: "cert.failed.example.com", payload: events.CertFailure{Domain: "example.com", Reason: "dns", NextAttempt: until}, dom: "example.com",
			summary: "certificate for example.com failed: dns; next attempt 2026-12-07T03:01:00Z"},
		{subject: "metrics.upstream.demo", payload: events.UpstreamMetrics{App: "demo", WindowStart: now, WindowSeconds: 10, Instances: []events.InstanceTraffic{
			{Address: "10.0.0.1:80", Requests: 90, Status5xx: 2, GatewayErrors: 1, P95MS: 12.4}, {Address: "10.0.0.2:80", Requests: 30, P95MS: 20}}},
			app: "demo", summary: "app demo: 120 requests in 10s, 2 5xx, 1 gateway errors, worst p95 20 ms"},
		{subject: "rejected.instance.registered.demo", payload: events.Rejection{Subject: "instance.registered.demo", Reason: "bad ip", By: "routing"},
			app: "demo", summary: "event on instance.registered.demo rejected by routing: bad ip"},
	} {
		t.Run(tc.subject, func(t *testing.T) {
			ev := decoded(t, tc.subject, tc.payload)
			r := Record(tc.subject, ev)
			if r.App != tc.app || r.Node != tc.node || r.Domain != tc.dom {
				t.Errorf("app %q node %q domain %q", r.App, r.Node, r.Domain)
			}
			if r.Summary != tc.summary {
				t.Errorf("summary %q\n           want %q", r.Summary, tc.summary)
			}
			if r.ID != ev.Envelope.ID || r.Type != ev.Envelope.Type || r.Subject != tc.subject || !r.Time.Equal(ev.Envelope.Time) {
				t.Errorf("headline %+v", r)
			}
			if !json.Valid(r.Data) || string(r.Data) != string(ev.Envelope.Data) {
				t.Errorf("data %s", r.Data)
			}
		})
	}
}

func TestClipKeepsRunes(t *testing.T) {
	s := clip(strings.Repeat("é", 400))
	if len(s) > maxSummary || !strings.HasSuffix(s, "…") || !json.Valid([]byte(`"`+s+`"`)) {
		t.Errorf("clipped to %d bytes: %q", len(s), s[len(s)-10:])
	}
}
