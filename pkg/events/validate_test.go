package events_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/orchestry/orchestry/pkg/events"
)

func TestHealthCheckValidation(t *testing.T) {
	for _, tc := range []struct {
		name  string
		check events.HealthCheck
		field string // "" means valid
	}{
		{"defaults", events.HealthCheck{}, ""},
		{"full HTTP", events.HealthCheck{Protocol: "HTTP", Path: "/healthz?deep=1", Method: "GET", Headers: []events.Header{{Name: "Host", Value: "web.internal"}},
			ExpectedStatusCodes: []int{200, 204}, ExpectedBody: `"status":"up"`, PeriodSeconds: 0.5, TimeoutSeconds: 1, FailureThreshold: 3, SuccessThreshold: 2}, ""},
		{"tcp", events.HealthCheck{Protocol: "TCP", Port: 9000}, ""},
		{"unknown protocol", events.HealthCheck{Protocol: "gRPC"}, "healthCheck.protocol"},
		{"relative path", events.HealthCheck{Path: "healthz"}, "healthCheck.path"},
		{"bad method", events.HealthCheck{Method: "DELETE"}, "healthCheck.method"},
		{"bad status", events.HealthCheck{ExpectedStatusCodes: []int{200, 42}}, "healthCheck.expectedStatusCodes[1]"},
		{"body with TCP", events.HealthCheck{Protocol: "TCP", ExpectedBody: "ok"}, "healthCheck.expectedBody"},
		{"body too long", events.HealthCheck{ExpectedBody: strings.Repeat("x", 257)}, "healthCheck.expectedBody"},
		{"body not UTF-8", events.HealthCheck{ExpectedBody: "\xff"}, "healthCheck.expectedBody"},
		{"negative period", events.HealthCheck{PeriodSeconds: -1}, "healthCheck.periodSeconds"},
		{"threshold too high", events.HealthCheck{SuccessThreshold: 101}, "healthCheck.successThreshold"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			app := events.App{Metadata: events.Metadata{Name: "web"}, HealthCheck: &tc.check}
			err := app.Validate()
			if tc.field == "" {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				return
			}
			var ve events.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("err = %v, want a ValidationError naming %s", err, tc.field)
			}
			for _, f := range ve {
				if f.Field == tc.field {
					return
				}
			}
			t.Fatalf("err = %v, want it to name %s", err, tc.field)
		})
	}
}

func TestTrafficSettingsValidation(t *testing.T) {
	for _, tc := range []struct {
		name  string
		spec  events.AppSpec
		field string // "" means valid
	}{
		{"none", events.AppSpec{}, ""},
		{"full", events.AppSpec{Retries: &events.Retries{Conditions: []string{"error", "timeout", "http_503"}, Tries: 3, Timeout: 10},
			RateLimit: &events.RateLimit{RequestsPerSecond: 50, Burst: 20}, ConnLimit: 10, MaxConns: 500}, ""},
		{"retries off", events.AppSpec{Retries: &events.Retries{Conditions: []string{"off"}}}, ""},
		{"unknown condition", events.AppSpec{Retries: &events.Retries{Conditions: []string{"error", "http_418"}}}, "spec.retries.conditions[1]"},
		{"injected condition", events.AppSpec{Retries: &events.Retries{Conditions: []string{"error; include /etc/passwd"}}}, "spec.retries.conditions[0]"},
		{"duplicate condition", events.AppSpec{Retries: &events.Retries{Conditions: []string{"error", "error"}}}, "spec.retries.conditions[1]"},
		{"off with others", events.AppSpec{Retries: &events.Retries{Conditions: []string{"error", "off"}}}, "spec.retries.conditions[1]"},
		{"tries", events.AppSpec{Retries: &events.Retries{Tries: 101}}, "spec.retries.tries"},
		{"retry timeout", events.AppSpec{Retries: &events.Retries{Timeout: -1}}, "spec.retries.timeout"},
		{"zero rate", events.AppSpec{RateLimit: &events.RateLimit{}}, "spec.rate_limit.requests_per_second"},
		{"negative burst", events.AppSpec{RateLimit: &events.RateLimit{RequestsPerSecond: 1, Burst: -1}}, "spec.rate_limit.burst"},
		{"conn limit", events.AppSpec{ConnLimit: -1}, "spec.conn_limit"},
		{"max conns", events.AppSpec{MaxConns: 100001}, "spec.max_conns"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := events.App{Metadata: events.Metadata{Name: "web"}, Spec: tc.spec}.Validate()
			wantField(t, err, tc.field)
		})
	}
}

func TestRoutingStateAutoChoiceValidation(t *testing.T) {
	for _, tc := range []struct {
		name  string
		auto  events.AutoChoice
		field string
	}{
		{"least_conn with weights", events.AutoChoice{Method: events.LBLeastConn, Weights: map[string]int{"a": 1, "b": 3}}, ""},
		{"method", events.AutoChoice{Method: events.LBIPHash}, "auto.method"},
		{"weight", events.AutoChoice{Method: events.LBRoundRobin, Weights: map[string]int{"a": 5}}, "auto.weights.a"},
		{"instance id", events.AutoChoice{Method: events.LBRoundRobin, Weights: map[string]int{"a b": 1}}, "auto.weights"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := events.RoutingState{App: events.App{Metadata: events.Metadata{Name: "web"}}, Revision: 1, Auto: &tc.auto}
			err := s.Validate()
			if tc.field == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("error %v, want one naming %s", err, tc.field)
			}
		})
	}
}

func TestRenderReportValidation(t *testing.T) {
	live := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	base := events.RenderReport{Node: "edge-1", Outcome: events.OutcomeApplied}
	for _, tc := range []struct {
		name  string
		edit  func(*events.RenderReport)
		field string // "" means valid
	}{
		{"minimal", func(*events.RenderReport) {}, ""},
		{"status and served", func(r *events.RenderReport) {
			r.StatusAddr, r.LiveAt = "127.0.0.1:8091", &live
			r.Served = []events.ServedChange{{App: "web", Revision: 7, ChangedAt: live.Add(-time.Second)}}
		}, ""},
		{"status address without port", func(r *events.RenderReport) { r.StatusAddr = "127.0.0.1" }, "status_addr"},
		{"status address a name", func(r *events.RenderReport) { r.StatusAddr = "renderer-1:8091" }, ""},
		{"status address hostile", func(r *events.RenderReport) { r.StatusAddr = "a b/x:8091" }, "status_addr"},
		{"status address bad port", func(r *events.RenderReport) { r.StatusAddr = "renderer-1:0" }, "status_addr"},
		{"served without live_at", func(r *events.RenderReport) { r.Served = []events.ServedChange{{App: "web", Revision: 1}} }, "live_at"},
		{"served bad app", func(r *events.RenderReport) {
			r.LiveAt, r.Served = &live, []events.ServedChange{{App: "Web!", Revision: 1}}
		}, "served[0].app"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := base
			tc.edit(&r)
			err := r.Validate()
			wantField(t, err, tc.field)
		})
	}
}

// wantField fails t unless err is nil for field "" or a ValidationError
// naming field.
func wantField(t *testing.T, err error, field string) {
	t.Helper()
	if field == "" {
		if err != nil {
			t.Fatalf("rejected: %v", err)
		}
		return
	}
	var ve events.ValidationError
	if !errors.As(err, &ve) || !slices.ContainsFunc(ve, func(f events.FieldError) bool { return f.Field == field }) {
		t.Fatalf("err = %v, want it to name %s", err, field)
	}
}
