package events_test

import (
	"errors"
	"strings"
	"testing"

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
