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
