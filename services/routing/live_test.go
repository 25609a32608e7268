package routing_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/orchestry/orchestry/pkg/events"
	"github.com/orchestry/orchestry/services/routing/api"
)

// get sends an authorized GET and returns the status and body.
func (h *harness) get(path string) (int, string) {
	h.t.Helper()
	req, err := http.NewRequest("GET", h.base+path, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// eventually retries check every 50ms for 10s.
func eventually(t *testing.T, what string, check func() bool) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if check() {
			return
		}
	}
	t.Fatalf("%s: not within 10s", what)
}

// The whole service: the feed sees routing's own changes, a render report
// makes the app's rollout live, and a node's config is asked over NATS.
func TestLiveViews(t *testing.T) {
	h := start(t)
	h.putApp("shop")

	var evs api.EventsView
	eventually(t, "routing.changed.shop in the feed", func() bool {
		h.do("GET", "/v1/events?app=shop&subject=routing.changed", "", &evs)
		return len(evs.Events) == 1
	})
	if r := evs.Events[0]; r.Type != "io.orchestry.routing.changed.v1" || !strings.HasPrefix(r.Summary, "app shop changed to revision ") {
		t.Errorf("record %+v", r)
	}

	var app api.AppView
	h.do("GET", "/v1/apps/shop", "", &app)
	var ro api.RolloutView
	if code := h.do("GET", "/v1/apps/shop/rollout", "", &ro); code != 200 || ro.Revision != app.Revision || len(ro.Nodes) != 0 {
		t.Fatalf("rollout before any node: %d %+v", code, ro)
	}
	now := time.Now().UTC()
	rep := events.RenderReport{Node: "edge-1", Version: 3, Attempted: 3, Hash: "h", Outcome: events.OutcomeApplied, Revision: 1,
		LiveAt: &now, Served: []events.ServedChange{{App: "shop", Revision: app.Revision, ChangedAt: now}}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := events.Publish(ctx, h.js, "renderer", events.ConfigRendered("edge-1"), rep); err != nil {
		t.Fatal(err)
	}
	eventually(t, "rollout live", func() bool {
		h.do("GET", "/v1/apps/shop/rollout", "", &ro)
		return len(ro.Nodes) == 1 && ro.Nodes[0].Live && ro.Nodes[0].ServedRevision == app.Revision && ro.Nodes[0].Version == 3
	})
	eventually(t, "the report in the feed", func() bool {
		h.do("GET", "/v1/events?subject=config.rendered.edge-1", "", &evs)
		return len(evs.Events) == 1 && evs.Events[0].Node == "edge-1"
	})

	// No renderer answers for edge-1 yet.
	if code, body := h.get("/v1/nodes/edge-1/config"); code != 404 || !strings.Contains(body, "edge-1") {
		t.Errorf("no renderer: %d %s", code, body)
	}
	sub, err := h.js.Conn().Subscribe(events.RendererConfig("edge-1"), func(m *nats.Msg) {
		b, _ := json.Marshal(events.NodeConfig{Node: "edge-1", Version: 3, Hash: "h",
			Files: []events.ConfigFile{{Path: "apps/shop.conf", Content: "upstream orchestry_shop {}\n"}}})
		_ = m.Respond(b)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if code, body := h.get("/v1/nodes/edge-1/config"); code != 200 || body != "# file: apps/shop.conf\nupstream orchestry_shop {}\n" {
		t.Errorf("config: %d %q", code, body)
	}
}
