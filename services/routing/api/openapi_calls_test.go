package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/orchestry/orchestry/pkg/events"
	"github.com/orchestry/orchestry/pkg/events/eventstest"
	"github.com/orchestry/orchestry/services/routing/api"
	"github.com/orchestry/orchestry/services/routing/certview"
	"github.com/orchestry/orchestry/services/routing/feed"
	"github.com/orchestry/orchestry/services/routing/nodeconfig"
	"github.com/orchestry/orchestry/services/routing/status"
	"github.com/orchestry/orchestry/services/routing/store"
)

// Sources answering with data, so the optional parts of the answers are
// checked against the document too.
type (
	healthy    struct{}
	traffic    struct{}
	certSource struct{}
	nodeConfig struct{}
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func (healthy) Lookup(app, id string) (events.HealthState, bool) {
	return events.HealthState{App: app, InstanceID: id, State: events.HealthHealthy, ConsecutiveSuccesses: 3, LastLatencyMS: 1.5, Since: t0, Revision: 4}, true
}

func (traffic) Latest(app string) (events.UpstreamMetrics, bool) {
	if app != "shop" {
		return events.UpstreamMetrics{}, false
	}
	return events.UpstreamMetrics{App: app, WindowStart: t0, WindowSeconds: 10, Instances: []events.InstanceTraffic{
		{Address: "10.0.0.1:8080", Requests: 120, P50MS: 2, P95MS: 9, P99MS: 20, Status2xx: 118, Status5xx: 2, Bytes: 4096},
	}}, true
}

func (certSource) Domains() map[string]certview.Domain {
	return map[string]certview.Domain{
		"secure.example.com": {Issued: &events.Certificate{Domain: "secure.example.com", Serial: "01", NotBefore: t0, NotAfter: t0.Add(90 * 24 * time.Hour), Issuer: "Orchestry local CA", FingerprintSHA256: strings.Repeat("ab", 32)}, IssuedAt: t0},
		"gone.example.com":   {Failure: &events.CertFailure{Domain: "gone.example.com", Reason: "acme: no answer", NextAttempt: t0.Add(time.Hour)}, FailedAt: t0},
	}
}

func (nodeConfig) Fetch(_ context.Context, node string) (events.NodeConfig, error) {
	switch node {
	case "edge-1":
		return events.NodeConfig{Node: node, Version: 7, Hash: "9f2c", Files: []events.ConfigFile{
			{Path: "nginx.conf", Content: "events {}\nhttp { include apps/*.conf; }\n"},
			{Path: "apps/shop.conf", Content: "upstream shop { server 10.0.0.2:8080 weight=5; }\n"},
		}}, nil
	case "fresh":
		return events.NodeConfig{Node: node}, nil
	case "broken":
		return events.NodeConfig{}, errors.New("nats: timeout")
	}
	return events.NodeConfig{}, fmt.Errorf("node %s: %w", node, nodeconfig.ErrNoNode)
}

// sampleFeed is an event feed holding a few events, recorded as routing's
// feed records them.
func sampleFeed(t *testing.T) *feed.Feed {
	t.Helper()
	f := feed.New(feed.Options{})
	for _, e := range []struct {
		subject string
		p       events.Payload
	}{
		{events.InstanceHealth("shop"), events.HealthState{App: "shop", InstanceID: "a", State: events.HealthUnhealthy, ConsecutiveFailures: 3, LastError: "connection refused", Since: t0, Revision: 9}},
		{events.MetricsUpstream("shop"), events.UpstreamMetrics{App: "shop", WindowStart: t0, WindowSeconds: 10}},
		{events.CertIssued("secure.example.com"), events.Certificate{Domain: "secure.example.com", Serial: "01", NotBefore: t0, NotAfter: t0.Add(time.Hour), Issuer: "CA", FingerprintSHA256: strings.Repeat("ab", 32)}},
	} {
		env, err := events.NewEnvelope("test", e.subject, e.p)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := json.Marshal(env)
		if err != nil {
			t.Fatal(err)
		}
		ev, err := events.Decode(e.subject, raw)
		if err != nil {
			t.Fatal(err)
		}
		f.Add(feed.Record(e.subject, ev))
	}
	return f
}

// setupSpec is setup with every source answering, and the JetStream
// context, to break the store at the end.
func setupSpec(t *testing.T) (*env, func()) {
	t.Helper()
	srv := eventstest.Start(t, "")
	_, js := srv.Connect(t)
	st, err := store.Open(context.Background(), js)
	if err != nil {
		t.Fatal(err)
	}
	tr := &status.Tracker{}
	live := t0.Add(time.Second)
	tr.Observe(events.RenderReport{Node: "edge-1", Version: 7, Attempted: 7, Hash: "9f2c", Outcome: events.OutcomeApplied, Apps: 2,
		RenderMS: 3, ValidateMS: 40, ReloadMS: 12, Revision: 7, StatusAddr: "127.0.0.1:8081", LiveAt: &live,
		Problems: []events.AppProblem{{App: "secure", Reason: "no certificate yet"}},
		Served:   []events.ServedChange{{App: "shop", Revision: 3, ChangedAt: t0}}}, live)
	opts := api.Options{Token: token, MaxBody: 64 << 10, Health: healthy{}, Traffic: traffic{}, Certs: certSource{},
		NodeConfig: nodeConfig{}, Events: sampleFeed(t)}
	h := api.New(st, tr, opts, zerolog.New(zerolog.NewTestWriter(t)))
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	breakStore := func() {
		if err := js.DeleteKeyValue(context.Background(), events.BucketApps); err != nil {
			t.Fatal(err)
		}
	}
	return &env{t: t, url: ts.URL, kv: st.KV()}, breakStore
}

// notProduced are documented answers this test cannot bring about: a
// 409 from too many concurrent changes of one app (compare-and-set losing
// every attempt in a row).
var notProduced = map[string]bool{
	"DELETE /v1/apps/{name} 409":                true,
	"POST /v1/apps/{name}/instances 409":        true,
	"DELETE /v1/apps/{name}/instances/{id} 409": true,
	"PUT /v1/apps/{name}/routes/{id} 409":       true,
	"DELETE /v1/apps/{name}/routes/{id} 409":    true,
}

// TestResponsesMatchSpec drives every operation to every status its handler
// writes and checks each answer against openapi.json: the status is
// documented for the operation, and the body valid against its schema.
func TestResponsesMatchSpec(t *testing.T) {
	e, breakStore := setupSpec(t)
	s := loadSpec(t)
	big := strings.Repeat("#", 70<<10)
	app := func(name, domain string, port int) string { return appYAML(name, domain, port) }
	tlsApp := "apiVersion: v1\nkind: App\nmetadata:\n  name: secure\nspec:\n  networking:\n    domain: secure.example.com\n    ssl:\n      enabled: true\n"
	const (
		apps      = "/v1/apps"
		appT      = "/v1/apps/{name}"
		instT     = "/v1/apps/{name}/instances"
		oneInstT  = "/v1/apps/{name}/instances/{id}"
		metricsT  = "/v1/apps/{name}/metrics"
		routesT   = "/v1/apps/{name}/routes"
		routeT    = "/v1/apps/{name}/routes/{id}"
		rolloutT  = "/v1/apps/{name}/rollout"
		statusT   = "/v1/status"
		certsT    = "/v1/certs"
		configT   = "/v1/nodes/{node}/config"
		eventsT   = "/v1/events"
		streamT   = "/v1/events/stream"
		openapiT  = "/v1/openapi.json"
		yaml      = "application/yaml"
		jsonType  = "application/json"
		instance  = `{"id":"a","ip":"10.0.0.1","port":8080}`
		instance2 = `{"id":"a","ip":"10.0.0.2","port":8080,"weight":5}`
	)
	calls := []call{
		{method: "PUT", path: "/v1/apps/shop", template: appT, ctype: yaml, body: app("shop", "shop.example.com", 0), want: 201},
		{method: "PUT", path: "/v1/apps/shop", template: appT, ctype: yaml, body: app("shop", "shop.example.com", 0), want: 200},
		{method: "PUT", path: "/v1/apps/plain", template: appT, ctype: jsonType, body: `{"apiVersion":"v1","kind":"App","metadata":{"name":"plain"},"spec":{}}`, want: 201},
		{method: "PUT", path: "/v1/apps/secure", template: appT, ctype: yaml, body: tlsApp, want: 201},
		{method: "PUT", path: "/v1/apps/two", template: appT, ctype: yaml, body: app("two", "shop.example.com", 80), want: 409},
		{method: "PUT", path: "/v1/apps/two", template: appT, ctype: "text/plain", body: "x", want: 415},
		{method: "PUT", path: "/v1/apps/two", template: appT, ctype: yaml, body: "a: [", want: 400},
		{method: "PUT", path: "/v1/apps/two", template: appT, ctype: yaml, body: big, want: 413},
		{method: "PUT", path: "/v1/apps/two", template: appT, ctype: yaml, body: app("two", "Bad_Domain", 70000), want: 422},
		{method: "GET", path: apps, template: apps, want: 200},
		{method: "GET", path: "/v1/apps/shop", template: appT, want: 200},
		{method: "GET", path: "/v1/apps/nope", template: appT, want: 404},
		{method: "POST", path: "/v1/apps/nope/instances", template: instT, ctype: jsonType, body: instance, want: 404},
		{method: "POST", path: "/v1/apps/shop/instances", template: instT, ctype: jsonType, body: instance, want: 201},
		{method: "POST", path: "/v1/apps/shop/instances", template: instT, ctype: jsonType, body: instance2, want: 200},
		{method: "POST", path: "/v1/apps/shop/instances", template: instT, ctype: jsonType, body: `[1]`, want: 400},
		{method: "POST", path: "/v1/apps/shop/instances", template: instT, ctype: jsonType, body: big, want: 413},
		{method: "POST", path: "/v1/apps/shop/instances", template: instT, ctype: jsonType, body: `{"id":"b","ip":"999.0.0.1","port":0}`, want: 422},
		{method: "GET", path: "/v1/apps/shop/instances", template: instT, want: 200},
		{method: "GET", path: "/v1/apps/nope/instances", template: instT, want: 404},
		{method: "GET", path: "/v1/apps/shop/metrics", template: metricsT, want: 200},
		{method: "GET", path: "/v1/apps/plain/metrics", template: metricsT, want: 200},
		{method: "GET", path: "/v1/apps/nope/metrics", template: metricsT, want: 404},
		{method: "PUT", path: "/v1/apps/shop/routes/api", template: routeT, ctype: jsonType, body: `{"match":{"path":"/api"},"priority":5}`, want: 201},
		{method: "PUT", path: "/v1/apps/shop/routes/api", template: routeT, ctype: jsonType, body: `{"id":"api","match":{"path_type":"exact","path":"/api"}}`, want: 200},
		{method: "PUT", path: "/v1/apps/shop/routes/api", template: routeT, ctype: jsonType, body: `{`, want: 400},
		{method: "PUT", path: "/v1/apps/shop/routes/api", template: routeT, ctype: jsonType, body: big, want: 413},
		{method: "PUT", path: "/v1/apps/shop/routes/api", template: routeT, ctype: jsonType, body: `{"priority":"high"}`, want: 422},
		{method: "PUT", path: "/v1/apps/nope/routes/api", template: routeT, ctype: jsonType, body: `{}`, want: 404},
		{method: "GET", path: "/v1/apps/shop/routes", template: routesT, want: 200},
		{method: "GET", path: "/v1/apps/plain/routes", template: routesT, want: 200},
		{method: "GET", path: "/v1/apps/nope/routes", template: routesT, want: 404},
		{method: "GET", path: "/v1/apps/shop/routes/api", template: routeT, want: 200},
		{method: "GET", path: "/v1/apps/shop/routes/zzz", template: routeT, want: 404},
		{method: "GET", path: "/v1/apps/shop/rollout", template: rolloutT, want: 200},
		{method: "GET", path: "/v1/apps/nope/rollout", template: rolloutT, want: 404},
		{method: "GET", path: statusT, template: statusT, want: 200},
		{method: "GET", path: certsT, template: certsT, want: 200},
		{method: "GET", path: openapiT, template: openapiT, want: 200},
		{method: "GET", path: "/v1/nodes/Bad_Name/config", template: configT, want: 422},
		{method: "GET", path: "/v1/nodes/ghost/config", template: configT, want: 404},
		{method: "GET", path: "/v1/nodes/fresh/config", template: configT, want: 404},
		{method: "GET", path: "/v1/nodes/edge-1/config", template: configT, want: 200},
		{method: "GET", path: "/v1/nodes/broken/config", template: configT, want: 500},
		{method: "GET", path: eventsT + "?limit=5", template: eventsT, want: 200},
		{method: "GET", path: eventsT + "?app=shop&subject=routing.changed.*", template: eventsT, want: 200},
		{method: "GET", path: eventsT + "?limit=x", template: eventsT, want: 422},
		{method: "GET", path: eventsT + "?app=Bad_App", template: eventsT, want: 422},
		{method: "GET", path: streamT + "?app=shop", template: streamT, want: 200},
		{method: "GET", path: streamT + "?subject=a%20b", template: streamT, want: 422},
		{method: "DELETE", path: "/v1/apps/shop/routes/api", template: routeT, want: 204},
		{method: "DELETE", path: "/v1/apps/shop/routes/api", template: routeT, want: 404},
		{method: "DELETE", path: "/v1/apps/shop/instances/a", template: oneInstT, want: 204},
		{method: "DELETE", path: "/v1/apps/shop/instances/a", template: oneInstT, want: 404},
		{method: "DELETE", path: "/v1/apps/shop", template: appT, want: 204},
		{method: "DELETE", path: "/v1/apps/shop", template: appT, want: 404},
	}
	// Every operation refuses a request without the token.
	for _, c := range slices.Clone(calls) {
		if c.want == 200 && c.method == "GET" {
			calls = append(calls, call{method: c.method, path: c.path, template: c.template, noToken: true, want: 401})
		}
	}
	for _, c := range []call{
		{method: "PUT", path: "/v1/apps/x", template: appT},
		{method: "DELETE", path: "/v1/apps/x", template: appT},
		{method: "POST", path: "/v1/apps/x/instances", template: instT},
		{method: "DELETE", path: "/v1/apps/x/instances/a", template: oneInstT},
		{method: "PUT", path: "/v1/apps/x/routes/a", template: routeT},
		{method: "DELETE", path: "/v1/apps/x/routes/a", template: routeT},
	} {
		c.noToken, c.want = true, 401
		calls = append(calls, c)
	}
	served := map[string]bool{}
	for _, c := range calls {
		// Without the token, an unserved route answers 401 too.
		if e.send(s, c) && !c.noToken {
			served[c.method+" "+c.template] = true
		}
	}
	// A store that fails answers 500 wherever the handler reads or writes it.
	breakStore()
	for _, c := range []call{
		{method: "GET", path: apps, template: apps},
		{method: "GET", path: "/v1/apps/plain", template: appT},
		{method: "PUT", path: "/v1/apps/plain", template: appT, ctype: yaml, body: app("plain", "p.example.com", 0)},
		{method: "DELETE", path: "/v1/apps/plain", template: appT},
		{method: "GET", path: "/v1/apps/plain/instances", template: instT},
		{method: "POST", path: "/v1/apps/plain/instances", template: instT, ctype: jsonType, body: instance},
		{method: "DELETE", path: "/v1/apps/plain/instances/a", template: oneInstT},
		{method: "GET", path: "/v1/apps/plain/metrics", template: metricsT},
		{method: "GET", path: "/v1/apps/plain/rollout", template: rolloutT},
		{method: "GET", path: "/v1/apps/plain/routes", template: routesT},
		{method: "GET", path: "/v1/apps/plain/routes/a", template: routeT},
		{method: "PUT", path: "/v1/apps/plain/routes/a", template: routeT, ctype: jsonType, body: `{}`},
		{method: "DELETE", path: "/v1/apps/plain/routes/a", template: routeT},
		{method: "GET", path: certsT, template: certsT},
	} {
		c.want = 500
		e.send(s, c)
	}
	// Every documented answer of a served operation was seen, but those
	// no test can bring about.
	for path, item := range s.doc["paths"].(map[string]any) {
		for method, op := range item.(map[string]any) {
			m := strings.ToUpper(method)
			if !served[m+" "+path] {
				continue
			}
			for code := range op.(map[string]any)["responses"].(map[string]any) {
				if key := m + " " + path + " " + code; s.seen[key] || notProduced[key] {
					continue
				}
				t.Errorf("%s %s: openapi.json documents %s, which no call here produced", m, path, code)
			}
		}
	}
}
