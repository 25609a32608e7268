package spec

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/orchestry/orchestry/pkg/events"
)

// fullApp is an Orchestry app.yml as users write it, with orchestration
// fields the traffic plane ignores.
const fullApp = `apiVersion: v1
kind: App
metadata:
  name: shop
  labels:
    team: web
spec:
  type: http
  image: "shop:1.2"
  ports:
    - containerPort: 8080
      protocol: HTTP
  resources:
    cpu: "500m"
    memory: 256Mi
  environment:
    - name: MODE
      value: prod
  command: ["/shop"]
  args: ["--fast"]
  workingDir: /srv
  volumes: []
  networking:
    external_port: 8080
    domain: shop.example.com
    ssl:
      enabled: true
    max_body_size: 10m
    timeout: 30
    headers:
      X-Frame-Options: DENY
  lb_method: auto
  session_affinity: true
scaling:
  mode: auto
  minReplicas: 1
healthCheck:
  path: /healthz
  port: 8080
  protocol: HTTP
  periodSeconds: 10
`

func fields(err error) []string {
	var ve events.ValidationError
	if !errors.As(err, &ve) {
		return nil
	}
	out := make([]string, len(ve))
	for i, f := range ve {
		out[i] = f.Field
	}
	slices.Sort(out)
	return out
}

func TestParse(t *testing.T) {
	tests := []struct {
		name        string
		body        string
		contentType string
		url         string
		wantFields  []string // nil: success
		wantErr     error    // a plain (non-field) error
		wantWarn    []string
	}{
		{
			name: "full app.yml applies with warnings", body: fullApp, contentType: "application/yaml", url: "shop",
			wantWarn: []string{
				"spec.type is ignored by the traffic plane", "spec.image is ignored by the traffic plane",
				"spec.ports is ignored by the traffic plane", "spec.resources is ignored by the traffic plane",
				"spec.environment is ignored by the traffic plane", "spec.command is ignored by the traffic plane",
				"spec.args is ignored by the traffic plane", "spec.workingDir is ignored by the traffic plane",
				"spec.volumes is ignored by the traffic plane", "scaling is ignored by the traffic plane",
			},
		},
		{
			name: "sniffed JSON", url: "api",
			body: `{"apiVersion":"v1","kind":"App","metadata":{"name":"api"},"spec":{"networking":{"domain":"api.example.com"}}}`,
		},
		{
			name: "unknown field named by path", url: "shop", contentType: "text/yaml",
			body:       strings.Replace(fullApp, "    timeout: 30\n", "    timeout: 30\n    domian: x\n", 1),
			wantFields: []string{"spec.networking.domian"},
		},
		{
			name: "unknown top-level and healthCheck fields", url: "shop",
			body:       fullApp + "  bogus: true\n" + "extra: 1\n",
			wantFields: []string{"extra", "healthCheck.bogus"},
		},
		{
			name: "wrong types named with list indexes", url: "shop",
			body: "apiVersion: v1\nkind: App\nmetadata: {name: shop}\nspec:\n  networking: {external_port: \"x\"}\n" +
				"  rules:\n    - id: a\n    - id: b\n      priority: high\n      enabled: \"yes\"\n",
			wantFields: []string{"spec.networking.external_port", "spec.rules[1].enabled", "spec.rules[1].priority"},
		},
		{
			name: "bad domain and bad port both listed", url: "shop",
			body:       strings.NewReplacer("external_port: 8080", "external_port: 70000", "domain: shop.example.com", "domain: Shop_Example").Replace(fullApp),
			wantFields: []string{"spec.networking.domain", "spec.networking.external_port"},
		},
		{
			name: "type error named by path", url: "shop",
			body:       strings.Replace(fullApp, "external_port: 8080", "external_port: eighty", 1),
			wantFields: []string{"spec.networking.external_port"},
		},
		{
			name: "wrong kind and apiVersion", url: "shop",
			body:       strings.NewReplacer("apiVersion: v1", "apiVersion: v2", "kind: App", "kind: Service").Replace(fullApp),
			wantFields: []string{"apiVersion", "kind"},
		},
		{
			name: "missing kind and apiVersion", url: "api",
			body:       `{"metadata":{"name":"api"},"spec":{}}`,
			wantFields: []string{"apiVersion", "kind"},
		},
		{
			name: "name mismatch", body: fullApp, url: "other",
			wantFields: []string{"metadata.name"},
		},
		{
			name: "invalid lb method and hash key", url: "api",
			body:       `{"apiVersion":"v1","kind":"App","metadata":{"name":"api"},"spec":{"lb_method":"fastest","hash_key":"x"}}`,
			wantFields: []string{"spec.hash_key", "spec.lb_method"},
		},
		{
			name: "not YAML", url: "api", body: "a: [1, 2\n", wantErr: ErrMalformed,
		},
		{
			name: "not an object", url: "api", body: "- 1\n- 2\n", wantErr: ErrMalformed,
		},
		{
			name: "unsupported media type", url: "api", body: "{}", contentType: "text/plain", wantErr: ErrMediaType,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app, warnings, err := Parse([]byte(tt.body), tt.contentType, tt.url)
			switch {
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			case tt.wantFields != nil:
				if got := fields(err); !slices.Equal(got, tt.wantFields) {
					t.Fatalf("fields = %v, want %v (err %v)", got, tt.wantFields, err)
				}
				return
			case err != nil:
				t.Fatalf("unexpected error: %v", err)
			}
			if app.Metadata.Name != tt.url {
				t.Errorf("name = %q", app.Metadata.Name)
			}
			if tt.wantWarn != nil && !slices.Equal(warnings, tt.wantWarn) {
				t.Errorf("warnings = %q, want %q", warnings, tt.wantWarn)
			}
		})
	}
}

func TestParseKeepsDeclaredFields(t *testing.T) {
	app, _, err := Parse([]byte(fullApp), "", "shop")
	if err != nil {
		t.Fatal(err)
	}
	n := app.Spec.Networking
	if n.ExternalPort != 8080 || n.Domain != "shop.example.com" || !n.SSL.Enabled || n.MaxBodySize != "10m" ||
		n.Timeout != 30 || n.Headers["X-Frame-Options"] != "DENY" || app.Spec.LBMethod != "auto" ||
		app.HealthCheck == nil || app.HealthCheck.Path != "/healthz" || app.Metadata.Labels["team"] != "web" {
		t.Errorf("declared app not kept: %+v", app)
	}
}

func TestResolve(t *testing.T) {
	tests := []struct {
		name                    string
		spec                    events.AppSpec
		wantMethod, wantHashKey string
		wantPort                int
	}{
		{"empty is round robin on 80", events.AppSpec{}, events.LBRoundRobin, "", 80},
		{"session affinity makes ip_hash", events.AppSpec{SessionAffinity: true}, events.LBIPHash, "", 80},
		{"auto with affinity", events.AppSpec{LBMethod: "auto", SessionAffinity: true, Stateful: true}, events.LBIPHash, "", 80},
		{"auto stateful", events.AppSpec{LBMethod: "auto", Stateful: true}, events.LBHash, "remote_addr", 80},
		{"auto plain", events.AppSpec{LBMethod: "auto"}, events.LBRoundRobin, "", 80},
		{"cookie affinity", events.AppSpec{SessionAffinity: true, HashKey: "cookie:sid"}, events.LBHash, "cookie:sid", 80},
		{"auto cookie affinity", events.AppSpec{LBMethod: "auto", SessionAffinity: true, HashKey: "cookie:sid"}, events.LBHash, "cookie:sid", 80},
		{"explicit kept", events.AppSpec{LBMethod: "hash", HashKey: "request_uri", Networking: events.Networking{ExternalPort: 8443}}, events.LBHash, "request_uri", 8443},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := events.App{Metadata: events.Metadata{Name: "a"}, Spec: tt.spec}
			got := Resolve(in)
			if got.Spec.LBMethod != tt.wantMethod || got.Spec.HashKey != tt.wantHashKey || got.Spec.Networking.ExternalPort != tt.wantPort {
				t.Errorf("resolved %+v", got.Spec)
			}
			if err := got.Validate(); err != nil {
				t.Errorf("resolved app invalid: %v", err)
			}
			if !reflect.DeepEqual(in.Spec, tt.spec) {
				t.Errorf("declared app modified")
			}
		})
	}
}
