package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orchestry/orchestry/pkg/events"
)

func TestRequestsAreSpreadOverAllThreeInstances(t *testing.T) {
	s := newStack(t)
	port := s.serveWeb(3)
	got := hits(t, port, 90)
	for _, id := range []string{"demo-1", "demo-2", "demo-3"} {
		// Round robin over three equal servers: 30 each; allow for the
		// per-worker start offset.
		if got[id] < 25 || got[id] > 35 {
			t.Fatalf("%s got %d of 90 requests: %v", id, got[id], got)
		}
	}
	// The app's server also answers /_health itself and stub_status to
	// loopback callers.
	for path, want := range map[string]string{"/_health": "ok", "/_status": "Active connections"} {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", port, path))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), want) {
			t.Fatalf("%s: %d %q", path, resp.StatusCode, b)
		}
	}
}

func TestDeregisteringThroughRESTRemovesTheInstanceFromTraffic(t *testing.T) {
	s := newStack(t)
	port := s.serveWeb(3)
	s.mustDo(http.StatusNoContent, http.MethodDelete, "/v1/apps/web/instances/demo-2", "", "")
	waitServes(t, port, "demo-1", "demo-3")
	// NGINX runs old and new workers side by side for a moment after a
	// reload; the renderer reports the version only once the old ones
	// stopped accepting.
	s.settle()
	if got := hits(t, port, 60); got["demo-2"] != 0 || len(got) != 2 {
		t.Fatalf("after removal: %v", got)
	}
}

func TestDeregisteringThroughANATSEventRemovesTheInstanceFromTraffic(t *testing.T) {
	s := newStack(t)
	port := s.serveWeb(3)
	s.publishRaw(events.InstanceDeregistered("web"), "io.orchestry.instance.deregistered.v1", `{"id":"demo-3"}`)
	waitServes(t, port, "demo-1", "demo-2")
	// NGINX runs old and new workers side by side for a moment after a
	// reload; the renderer reports the version only once the old ones
	// stopped accepting.
	s.settle()
	if got := hits(t, port, 60); got["demo-3"] != 0 || len(got) != 2 {
		t.Fatalf("after removal: %v", got)
	}
}

func TestAnInstanceRegisteredByRawNATSPublishIsServed(t *testing.T) {
	s := newStack(t)
	port := freePort(t)
	s.putApp("web", port, "")
	// No instances yet: NGINX answers 503 itself.
	deadline := time.Now().Add(30 * time.Second)
	for hits(t, port, 1)["status:503"] != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("app without instances does not answer 503: %v", hits(t, port, 1))
		}
		time.Sleep(50 * time.Millisecond)
	}
	b := s.backends[3]
	s.publishRaw(events.InstanceRegistered("web"), "io.orchestry.instance.registered.v1",
		fmt.Sprintf(`{"instance":{"id":%q,"ip":"127.0.0.1","port":%d}}`, b.ID, b.Addr.Port))
	waitServes(t, port, "demo-4")
	// The API shows it like any other instance.
	body := s.mustDo(http.StatusOK, http.MethodGet, "/v1/apps/web/instances", "", "")
	if !strings.Contains(body, `"demo-4"`) {
		t.Fatalf("instance list %s lacks demo-4", body)
	}
}

func TestAConfigThatFailsNginxTestNeverGoesLive(t *testing.T) {
	s := newStack(t)
	port := s.serveWeb(1)
	good := s.readFile("live/version.conf")

	// A certificate that Go accepts but NGINX's OpenSSL refuses (a 1024-bit
	// RSA key is below its security level) passes every check before
	// `nginx -t`, which fails: the renderer must keep the last good config.
	writeWeakCert(t, filepath.Join(s.dataDir, "certs"), "secure.example.test")
	s.drainReports()
	tlsPort := freePort(t)
	s.putApp("secure", tlsPort, "    domain: secure.example.test\n    ssl:\n      enabled: true\n")
	r := s.waitReport(func(r events.RenderReport) bool { return r.Apps == 2 }, "render of the TLS app")
	if r.Outcome != events.OutcomeInvalid || !strings.Contains(r.Error, "secure.example.test") {
		t.Fatalf("report %+v, want outcome invalid naming the refused certificate", r)
	}
	if r.Version >= r.Attempted {
		t.Fatalf("live version %d should stay below attempted %d", r.Version, r.Attempted)
	}
	if now := s.readFile("live/version.conf"); now != good {
		t.Fatalf("live config changed from %q to %q", good, now)
	}
	if got := hits(t, port, 20); got["demo-1"] != 20 {
		t.Fatalf("previous config stopped serving: %v", got)
	}
	// The failure is visible in the API.
	var st struct {
		Nodes []struct {
			Node    string `json:"node"`
			Outcome string `json:"outcome"`
			Error   string `json:"error"`
		} `json:"nodes"`
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_ = json.Unmarshal([]byte(s.mustDo(http.StatusOK, http.MethodGet, "/v1/status", "", "")), &st)
		if len(st.Nodes) == 1 && st.Nodes[0].Outcome == events.OutcomeInvalid {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/v1/status does not show the failure: %+v", st)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Removing the bad app renders exactly the config that stayed live, so
	// nothing is reloaded.
	s.drainReports()
	s.mustDo(http.StatusNoContent, http.MethodDelete, "/v1/apps/secure", "", "")
	after := s.waitReport(func(r events.RenderReport) bool { return r.Apps == 1 }, "render after removal")
	if after.Outcome != events.OutcomeUnchanged || after.Version != r.Version {
		t.Fatalf("after removal: %+v, want unchanged at version %d", after, r.Version)
	}
}

func TestTheRestartedRendererConvergesToEverythingPublishedWhileItWasDown(t *testing.T) {
	s := newStack(t)
	port := s.serveWeb(3)

	s.stopRenderer()
	// While it is down: one instance leaves (event), one joins (REST),
	// and a second app appears.
	s.publishRaw(events.InstanceDeregistered("web"), "io.orchestry.instance.deregistered.v1", `{"id":"demo-1"}`)
	s.addInstance("web", 3)
	port2 := freePort(t)
	s.putApp("api", port2, "")
	s.addInstance("api", 0)
	waitInstances(t, s, "web", 3)

	s.startRenderer()
	waitServes(t, port, "demo-2", "demo-3", "demo-4")
	waitServes(t, port2, "demo-1")
}

// waitInstances waits until routing holds n instances for app.
func waitInstances(t *testing.T, s *stack, app string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		body := s.mustDo(http.StatusOK, http.MethodGet, "/v1/apps/"+app+"/instances", "", "")
		var view struct {
			Instances []json.RawMessage `json:"instances"`
		}
		if err := json.Unmarshal([]byte(body), &view); err != nil {
			t.Fatalf("instance list %s: %v", body, err)
		}
		if len(view.Instances) == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s has %d instances, want %d: %s", app, len(view.Instances), n, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestNoRequestIsDroppedWhileInstancesComeAndGo(t *testing.T) {
	s := newStack(t)
	port := s.serveWeb(2)

	ctx, cancel := context.WithCancel(context.Background())
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 10 * time.Second}
			for ctx.Err() == nil {
				resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, resp.Status)
					continue
				}
				ok.Add(1)
			}
		}()
	}
	// Ten changes, each waited for until NGINX serves it: add and remove
	// demo-3 and demo-4 in turn while demo-1 and demo-2 stay.
	for i := range 10 {
		b := s.backends[2+(i/2)%2]
		if i%2 == 0 {
			s.addInstance("web", 2+(i/2)%2)
			waitServes(t, port, "demo-1", "demo-2", b.ID)
		} else {
			s.mustDo(http.StatusNoContent, http.MethodDelete, "/v1/apps/web/instances/"+b.ID, "", "")
			waitServes(t, port, "demo-1", "demo-2")
		}
	}
	cancel()
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d of %d requests failed across 10 reloads; first: %v", failed.Load(), failed.Load()+ok.Load(), firstErr.Load())
	}
	if ok.Load() < 100 {
		t.Fatalf("only %d requests made; the load did not run", ok.Load())
	}
	t.Logf("%d requests, none failed, across 10 reloads", ok.Load())
}

func TestAnInstanceHealthReportsUnhealthyLeavesTrafficAndReturns(t *testing.T) {
	s := newStack(t)
	port := s.serveWeb(3)
	health := func(state string, rev int) string {
		return fmt.Sprintf(`{"app":"web","instance_id":"demo-2","state":%q,"consecutive_successes":0,"consecutive_failures":3,"last_latency_ms":1.5,"since":%q,"revision":%d}`,
			state, time.Now().UTC().Format(time.RFC3339), rev)
	}
	s.publishRaw(events.InstanceHealth("web"), "io.orchestry.instance.health.v1", health(events.HealthUnhealthy, 2))
	waitServes(t, port, "demo-1", "demo-3")
	// An older revision arriving late changes nothing.
	s.publishRaw(events.InstanceHealth("web"), "io.orchestry.instance.health.v1", health(events.HealthHealthy, 1))
	time.Sleep(300 * time.Millisecond) // longer than the coalesce window: a wrong render would have happened
	if got := hits(t, port, 30); got["demo-2"] != 0 {
		t.Fatalf("a stale health event put demo-2 back: %v", got)
	}
	s.publishRaw(events.InstanceHealth("web"), "io.orchestry.instance.health.v1", health(events.HealthHealthy, 3))
	waitServes(t, port, "demo-1", "demo-2", "demo-3")
}
