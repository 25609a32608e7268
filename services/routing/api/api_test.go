package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/orchestry/orchestry/pkg/events"
	"github.com/orchestry/orchestry/pkg/events/eventstest"
	"github.com/orchestry/orchestry/services/routing/api"
	"github.com/orchestry/orchestry/services/routing/status"
	"github.com/orchestry/orchestry/services/routing/store"
)

const token = "test-token"

type env struct {
	t   *testing.T
	url string
	kv  jetstream.KeyValue
}

func setup(t *testing.T) *env {
	t.Helper()
	srv := eventstest.Start(t, "")
	_, js := srv.Connect(t)
	st, err := store.Open(context.Background(), js)
	if err != nil {
		t.Fatal(err)
	}
	h := api.New(st, &status.Tracker{}, api.Options{Token: token, MaxBody: 64 << 10}, zerolog.New(zerolog.NewTestWriter(t)))
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return &env{t: t, url: ts.URL, kv: st.KV()}
}

// do sends a request with the token and decodes the JSON answer into out.
func (e *env) do(method, path, contentType, body string, out any) int {
	e.t.Helper()
	return e.doToken(token, method, path, contentType, body, out)
}

func (e *env) doToken(tok, method, path, contentType, body string, out any) int {
	e.t.Helper()
	req, err := http.NewRequest(method, e.url+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			e.t.Fatalf("%s %s: decode %q: %v", method, path, b, err)
		}
	}
	return resp.StatusCode
}

func appYAML(name, domain string, port int) string {
	return fmt.Sprintf(`apiVersion: v1
kind: App
metadata:
  name: %s
spec:
  image: example:1
  networking:
    external_port: %d
    domain: %s
  lb_method: auto
  stateful: true
scaling:
  minReplicas: 2
`, name, port, domain)
}

func TestAuth(t *testing.T) {
	e := setup(t)
	var body api.ErrorBody
	for _, tok := range []string{"", "wrong", token + "x"} {
		if code := e.doToken(tok, "GET", "/v1/apps", "", "", &body); code != http.StatusUnauthorized || body.Code != api.CodeUnauthorized {
			t.Errorf("token %q: %d %+v", tok, code, body)
		}
	}
	if code := e.do("GET", "/v1/apps", "", "", nil); code != http.StatusOK {
		t.Errorf("with token: %d", code)
	}
}

func TestAppCRUD(t *testing.T) {
	e := setup(t)
	var put api.PutResult
	if code := e.do("PUT", "/v1/apps/shop", "application/yaml", appYAML("shop", "shop.example.com", 0), &put); code != http.StatusCreated {
		t.Fatalf("create: %d", code)
	}
	if !slices.Equal(put.Warnings, []string{"spec.image is ignored by the traffic plane", "scaling is ignored by the traffic plane"}) {
		t.Errorf("warnings %q", put.Warnings)
	}
	if put.Revision == 0 || put.App.Spec.LBMethod != "auto" {
		t.Errorf("put result %+v", put)
	}
	var put2 api.PutResult
	if code := e.do("PUT", "/v1/apps/shop", "", appYAML("shop", "www.example.com", 0), &put2); code != http.StatusOK || put2.Revision <= put.Revision {
		t.Fatalf("update: %d %+v", code, put2)
	}
	var got api.AppView
	if code := e.do("GET", "/v1/apps/shop", "", "", &got); code != http.StatusOK {
		t.Fatalf("get: %d", code)
	}
	// GET returns the declared spec, not the resolved one.
	if got.App.Spec.LBMethod != "auto" || got.App.Spec.Networking.ExternalPort != 0 || got.App.Spec.Networking.Domain != "www.example.com" {
		t.Errorf("get: %+v", got.App.Spec)
	}
	var list struct{ Apps []api.AppView }
	if code := e.do("GET", "/v1/apps", "", "", &list); code != http.StatusOK || len(list.Apps) != 1 {
		t.Fatalf("list: %d %+v", code, list)
	}
	if code := e.do("DELETE", "/v1/apps/shop", "", "", nil); code != http.StatusNoContent {
		t.Fatalf("delete: %d", code)
	}
	var eb api.ErrorBody
	if code := e.do("GET", "/v1/apps/shop", "", "", &eb); code != http.StatusNotFound || eb.Code != api.CodeNotFound || eb.Timestamp == "" {
		t.Errorf("get deleted: %d %+v", code, eb)
	}
	if code := e.do("DELETE", "/v1/apps/shop", "", "", nil); code != http.StatusNotFound {
		t.Errorf("delete again: %d", code)
	}
	// Recreating a deleted app is a create again.
	if code := e.do("PUT", "/v1/apps/shop", "", appYAML("shop", "shop.example.com", 0), nil); code != http.StatusCreated {
		t.Errorf("recreate: %d", code)
	}
}

func TestValidationLeavesKVUnchanged(t *testing.T) {
	e := setup(t)
	var put api.PutResult
	if code := e.do("PUT", "/v1/apps/shop", "", appYAML("shop", "shop.example.com", 8080), &put); code != http.StatusCreated {
		t.Fatalf("create: %d", code)
	}
	cases := []struct {
		name, app, body string
		want            []string
	}{
		{"bad domain and port", "shop", appYAML("shop", "Bad_Domain", 70000), []string{"spec.networking.domain", "spec.networking.external_port"}},
		{"unknown field", "shop", strings.Replace(appYAML("shop", "shop.example.com", 8080), "  stateful: true\n", "  stateful: true\n  replicas: 3\n", 1), []string{"spec.replicas"}},
		{"name mismatch", "shop", appYAML("other", "shop.example.com", 8080), []string{"metadata.name"}},
		{"new app invalid", "fresh", appYAML("fresh", "-x-", 8080), []string{"spec.networking.domain"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var eb api.ErrorBody
			if code := e.do("PUT", "/v1/apps/"+c.app, "", c.body, &eb); code != http.StatusUnprocessableEntity || eb.Code != api.CodeValidation {
				t.Fatalf("%d %+v", code, eb)
			}
			var got []string
			for _, d := range eb.Details {
				got = append(got, d.Field)
			}
			slices.Sort(got)
			if !slices.Equal(got, c.want) {
				t.Errorf("details %v, want %v", got, c.want)
			}
		})
	}
	entry, err := e.kv.Get(context.Background(), "shop")
	if err != nil || entry.Revision() != put.Revision {
		t.Errorf("shop changed: %v rev %d, want %d", err, entry.Revision(), put.Revision)
	}
	if _, err := e.kv.Get(context.Background(), "fresh"); err == nil {
		t.Error("invalid new app was stored")
	}
}

func TestBadRequests(t *testing.T) {
	e := setup(t)
	var eb api.ErrorBody
	if code := e.do("PUT", "/v1/apps/shop", "text/plain", "x", &eb); code != http.StatusUnsupportedMediaType || eb.Code != api.CodeBadRequest {
		t.Errorf("media type: %d %+v", code, eb)
	}
	if code := e.do("PUT", "/v1/apps/shop", "", "a: [", &eb); code != http.StatusBadRequest || eb.Code != api.CodeBadRequest {
		t.Errorf("malformed: %d %+v", code, eb)
	}
	big := strings.Repeat("#", 70<<10)
	if code := e.do("PUT", "/v1/apps/shop", "", big, &eb); code != http.StatusRequestEntityTooLarge {
		t.Errorf("too large: %d", code)
	}
	if code := e.do("GET", "/v1/nothing", "", "", &eb); code != http.StatusNotFound || eb.Code != api.CodeNotFound {
		t.Errorf("unknown endpoint: %d %+v", code, eb)
	}
}

func TestAddressConflict(t *testing.T) {
	e := setup(t)
	if code := e.do("PUT", "/v1/apps/one", "", appYAML("one", "a.example.com", 0), nil); code != http.StatusCreated {
		t.Fatalf("one: %d", code)
	}
	var eb api.ErrorBody
	// Port 0 resolves to 80, so 80 collides with the default.
	if code := e.do("PUT", "/v1/apps/two", "", appYAML("two", "a.example.com", 80), &eb); code != http.StatusConflict || eb.Code != api.CodeConflict {
		t.Errorf("conflict: %d %+v", code, eb)
	}
	if code := e.do("PUT", "/v1/apps/two", "", appYAML("two", "a.example.com", 8080), nil); code != http.StatusCreated {
		t.Errorf("other port: %d", code)
	}
	// An app may keep its own address on update.
	if code := e.do("PUT", "/v1/apps/one", "", appYAML("one", "a.example.com", 80), nil); code != http.StatusOK {
		t.Errorf("self update: %d", code)
	}
}

func TestInstances(t *testing.T) {
	e := setup(t)
	var eb api.ErrorBody
	if code := e.do("POST", "/v1/apps/shop/instances", "application/json", `{"id":"a","ip":"10.0.0.1","port":8080}`, &eb); code != http.StatusNotFound {
		t.Fatalf("unknown app: %d", code)
	}
	if code := e.do("PUT", "/v1/apps/shop", "", appYAML("shop", "shop.example.com", 0), nil); code != http.StatusCreated {
		t.Fatalf("create: %d", code)
	}
	if code := e.do("POST", "/v1/apps/shop/instances", "", `{"id":"a","ip":"10.0.0.1","port":8080}`, nil); code != http.StatusCreated {
		t.Errorf("add: %d", code)
	}
	if code := e.do("POST", "/v1/apps/shop/instances", "", `{"id":"a","ip":"10.0.0.2","port":8080,"weight":5}`, nil); code != http.StatusOK {
		t.Errorf("replace: %d", code)
	}
	if code := e.do("POST", "/v1/apps/shop/instances", "", `{"id":"b","ip":"999.0.0.1","port":0,"colour":"red"}`, &eb); code != http.StatusUnprocessableEntity || len(eb.Details) != 1 || eb.Details[0].Field != "colour" {
		t.Errorf("unknown field: %d %+v", code, eb)
	}
	if code := e.do("POST", "/v1/apps/shop/instances", "", `{"id":"b","ip":"999.0.0.1","port":0}`, &eb); code != http.StatusUnprocessableEntity || len(eb.Details) != 2 {
		t.Errorf("invalid: %d %+v", code, eb)
	}
	var iv api.InstancesView
	if code := e.do("GET", "/v1/apps/shop/instances", "", "", &iv); code != http.StatusOK || len(iv.Instances) != 1 || iv.Instances[0].IP != "10.0.0.2" || iv.Instances[0].Weight != 5 {
		t.Errorf("list: %d %+v", code, iv)
	}
	if code := e.do("DELETE", "/v1/apps/shop/instances/zzz", "", "", &eb); code != http.StatusNotFound {
		t.Errorf("delete absent: %d", code)
	}
	if code := e.do("DELETE", "/v1/apps/shop/instances/a", "", "", nil); code != http.StatusNoContent {
		t.Errorf("delete: %d", code)
	}
	if code := e.do("GET", "/v1/apps/shop/instances", "", "", &iv); code != http.StatusOK || iv.Instances == nil || len(iv.Instances) != 0 {
		t.Errorf("list after delete: %d %+v", code, iv)
	}
}

func TestConcurrentInstancePosts(t *testing.T) {
	e := setup(t)
	if code := e.do("PUT", "/v1/apps/shop", "", appYAML("shop", "shop.example.com", 0), nil); code != http.StatusCreated {
		t.Fatalf("create: %d", code)
	}
	const n = 20
	codes := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			body, _ := json.Marshal(events.Instance{ID: fmt.Sprintf("i%d", i), IP: "10.0.0.1", Port: 9000 + i})
			req, _ := http.NewRequest("POST", e.url+"/v1/apps/shop/instances", bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return
			}
			resp.Body.Close()
			codes[i] = resp.StatusCode
		})
	}
	wg.Wait()
	for i, c := range codes {
		if c != http.StatusCreated {
			t.Errorf("post %d: %d", i, c)
		}
	}
	var iv api.InstancesView
	e.do("GET", "/v1/apps/shop/instances", "", "", &iv)
	if len(iv.Instances) != n {
		t.Fatalf("stored %d instances, want %d", len(iv.Instances), n)
	}
}

func TestRoutes(t *testing.T) {
	e := setup(t)
	if code := e.do("PUT", "/v1/apps/shop", "", appYAML("shop", "shop.example.com", 0), nil); code != http.StatusCreated {
		t.Fatalf("create: %d", code)
	}
	revBefore := func() uint64 {
		entry, err := e.kv.Get(context.Background(), "shop")
		if err != nil {
			t.Fatal(err)
		}
		return entry.Revision()
	}
	steps := []struct {
		name, method, path, body string
		code                     int
		fields                   []string // for 422
		stored                   bool     // a successful write changes the KV
	}{
		{"add", "PUT", "/v1/apps/shop/routes/api", `{"match":{"path":"/api"},"priority":5}`, http.StatusCreated, nil, true},
		{"replace", "PUT", "/v1/apps/shop/routes/api", `{"id":"api","match":{"path_type":"exact","path":"/api"}}`, http.StatusOK, nil, true},
		{"second", "PUT", "/v1/apps/shop/routes/beta", `{"match":{"headers":[{"name":"X-Beta","type":"exists"}]}}`, http.StatusCreated, nil, true},
		{"id mismatch", "PUT", "/v1/apps/shop/routes/api", `{"id":"other"}`, http.StatusUnprocessableEntity, []string{"id"}, false},
		{"unknown field", "PUT", "/v1/apps/shop/routes/api", `{"match":{"pth":"/x"}}`, http.StatusUnprocessableEntity, []string{"match.pth"}, false},
		{"wrong type", "PUT", "/v1/apps/shop/routes/api", `{"priority":"high"}`, http.StatusUnprocessableEntity, []string{"priority"}, false},
		{"hostile path", "PUT", "/v1/apps/shop/routes/evil", `{"match":{"path":"/a;} server {"}}`, http.StatusUnprocessableEntity, []string{"spec.rules[2].match.path"}, false},
		{"bad id", "PUT", "/v1/apps/shop/routes/Bad_Id", `{}`, http.StatusUnprocessableEntity, []string{"spec.rules[2].id"}, false},
		{"not JSON", "PUT", "/v1/apps/shop/routes/api", `{`, http.StatusBadRequest, nil, false},
		{"unknown app", "PUT", "/v1/apps/nope/routes/api", `{}`, http.StatusNotFound, nil, false},
		{"delete absent", "DELETE", "/v1/apps/shop/routes/zzz", ``, http.StatusNotFound, nil, false},
		{"delete", "DELETE", "/v1/apps/shop/routes/beta", ``, http.StatusNoContent, nil, true},
	}
	for _, s := range steps {
		before := revBefore()
		var eb api.ErrorBody
		code := e.do(s.method, s.path, "application/json", s.body, &eb)
		if code != s.code {
			t.Fatalf("%s: %d %+v, want %d", s.name, code, eb, s.code)
		}
		if s.fields != nil {
			got := make([]string, len(eb.Details))
			for i, d := range eb.Details {
				got[i] = d.Field
			}
			if strings.Join(got, ",") != strings.Join(s.fields, ",") {
				t.Errorf("%s: fields %v, want %v", s.name, got, s.fields)
			}
		}
		if changed := revBefore() != before; changed != s.stored {
			t.Errorf("%s: KV changed = %v, want %v", s.name, changed, s.stored)
		}
	}
	var rv api.RoutesView
	if code := e.do("GET", "/v1/apps/shop/routes", "", "", &rv); code != http.StatusOK || len(rv.Routes) != 1 || rv.Routes[0].ID != "api" || rv.Routes[0].Match.PathType != "exact" {
		t.Fatalf("list: %d %+v", code, rv)
	}
	var one events.Rule
	if code := e.do("GET", "/v1/apps/shop/routes/api", "", "", &one); code != http.StatusOK || one.Match.Path != "/api" {
		t.Fatalf("get: %d %+v", code, one)
	}
	if code := e.do("GET", "/v1/apps/shop/routes/beta", "", "", nil); code != http.StatusNotFound {
		t.Fatalf("get deleted: %d", code)
	}
}
