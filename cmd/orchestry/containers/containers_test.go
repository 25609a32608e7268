package containers

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	dnetwork "github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/network"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/orchestry/orchestry/cmd/orchestry/natsconf"
	"github.com/orchestry/orchestry/pkg/events"
)

const appPort = "8088"

func TestMain(m *testing.M) {
	// No reaper container: nothing is pulled; each test removes its own.
	os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	// Ports are published on 127.0.0.1 only; reach them there.
	if os.Getenv("TESTCONTAINERS_HOST_OVERRIDE") == "" {
		os.Setenv("TESTCONTAINERS_HOST_OVERRIDE", "127.0.0.1")
	}
	os.Exit(m.Run())
}

func tag() string {
	if t := os.Getenv("ORCHESTRY_TAG"); t != "" {
		return t
	}
	return "dev"
}

// needDocker skips (or fails under ORCHESTRY_REQUIRE_INTEGRATION=1) when no
// Docker engine answers or an image is missing.
func needDocker(t *testing.T) {
	t.Helper()
	miss := func(format string, args ...any) {
		t.Helper()
		if os.Getenv("ORCHESTRY_REQUIRE_INTEGRATION") == "1" {
			t.Fatalf(format, args...)
		}
		t.Skipf(format, args...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		miss("no Docker engine: %v", err)
		return
	}
	defer cli.Close()
	if _, err := cli.Ping(ctx, client.PingOptions{}); err != nil {
		miss("no Docker engine answers: %v", err)
		return
	}
	for _, n := range []string{"nats", "routing", "health", "renderer", "orchestry"} {
		if _, err := cli.ImageInspect(ctx, "orchestry/"+n+":"+tag()); err != nil {
			miss("image orchestry/%s:%s missing (make images): %v", n, tag(), err)
			return
		}
	}
}

func secret(t *testing.T) string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "s" + hex.EncodeToString(b)
}

type env struct {
	t        *testing.T
	ctx      context.Context
	nw       *testcontainers.DockerNetwork
	pw       map[string]string
	token    string
	api      string
	nginx    string
	natsURL  string
	backends map[string]string // id -> container IP
}

// run starts image on the private network with alias name; ports are
// published on 127.0.0.1 only.
func (e *env) run(name, image string, envs map[string]string, cmd []string, ports []string, w wait.Strategy, files ...testcontainers.ContainerFile) *testcontainers.DockerContainer {
	e.t.Helper()
	opts := []testcontainers.ContainerCustomizer{
		network.WithNetwork([]string{name}, e.nw),
		testcontainers.WithEnv(envs),
		testcontainers.WithLabels(map[string]string{"orchestry.test": "containers"}),
	}
	if len(cmd) > 0 {
		opts = append(opts, testcontainers.WithCmd(cmd...))
	}
	if len(ports) > 0 {
		opts = append(opts, testcontainers.WithExposedPorts(ports...),
			testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
				hc.PortBindings = dnetwork.PortMap{}
				for _, p := range ports {
					hc.PortBindings[dnetwork.MustParsePort(p)] = []dnetwork.PortBinding{{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: "0"}}
				}
			}))
	}
	if w != nil {
		opts = append(opts, testcontainers.WithWaitStrategyAndDeadline(60*time.Second, w))
	}
	if len(files) > 0 {
		opts = append(opts, testcontainers.WithFiles(files...))
	}
	c, err := testcontainers.Run(e.ctx, "orchestry/"+image+":"+tag(), opts...)
	testcontainers.CleanupContainer(e.t, c)
	if err != nil {
		e.t.Fatalf("%s: %v", name, err)
	}
	return c
}

func (e *env) endpoint(c *testcontainers.DockerContainer, port, proto string) string {
	e.t.Helper()
	ep, err := c.PortEndpoint(e.ctx, port+"/tcp", proto)
	if err != nil {
		e.t.Fatal(err)
	}
	return ep
}

func start(t *testing.T) *env {
	needDocker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	t.Cleanup(cancel)
	nw, err := network.New(ctx)
	testcontainers.CleanupNetwork(t, nw)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, ctx: ctx, nw: nw, pw: map[string]string{}, token: secret(t), backends: map[string]string{}}
	for _, n := range events.Services() {
		e.pw[n] = secret(t)
	}
	conf, err := natsconf.Render(natsconf.Options{Listen: "0.0.0.0:4222", StoreDir: "/data/jetstream", Passwords: e.pw, Cost: 4})
	if err != nil {
		t.Fatal(err)
	}
	natsC := e.run("nats", "nats", nil, []string{"-c", "/etc/nats/nats.conf"}, []string{"4222/tcp"},
		wait.ForLog("Server is ready"),
		testcontainers.ContainerFile{Reader: strings.NewReader(conf), ContainerFilePath: "/etc/nats/nats.conf", FileMode: 0o644})
	e.natsURL = e.endpoint(natsC, "4222", "nats")

	svcEnv := func(user string, more map[string]string) map[string]string {
		m := map[string]string{"ORCHESTRY_NATS_URL": "nats://nats:4222", "ORCHESTRY_NATS_USER": user, "ORCHESTRY_NATS_PASSWORD": e.pw[user]}
		for k, v := range more {
			m[k] = v
		}
		return m
	}
	routing := e.run("routing", "routing", svcEnv("routing", map[string]string{"ORCHESTRY_API_TOKEN": e.token}), nil, []string{"8000/tcp"}, nil)
	e.api = e.endpoint(routing, "8000", "http")
	deadline := time.Now().Add(60 * time.Second)
	for code, _ := e.do("GET", "/v1/status", "", "", true); code != http.StatusOK; code, _ = e.do("GET", "/v1/status", "", "", true) {
		if time.Now().After(deadline) {
			t.Fatalf("routing API at %s does not answer: %d", e.api, code)
		}
		time.Sleep(200 * time.Millisecond)
	}
	e.run("health", "health", svcEnv("health", map[string]string{"ORCHESTRY_HEALTH_REPLICA": "health-1"}), nil, nil, nil)
	renderer := e.run("nginx-1", "renderer", svcEnv("renderer", map[string]string{"ORCHESTRY_NODE": "nginx-1", "ORCHESTRY_NGINX_WORKERS": "1", "ORCHESTRY_RENDER_SLOW_START": "0"}),
		nil, []string{appPort + "/tcp"}, nil)
	e.nginx = e.endpoint(renderer, appPort, "http")
	for _, id := range []string{"demo-a", "demo-b"} {
		c := e.run(id, "orchestry", nil, []string{"demo", "-listen", "0.0.0.0:9000", "-id", id}, nil, nil)
		ip, err := c.ContainerIP(ctx)
		if err != nil {
			t.Fatal(err)
		}
		e.backends[id] = ip
	}
	return e
}

func (e *env) do(method, path, ctype, body string, auth bool) (int, string) {
	req, _ := http.NewRequestWithContext(e.ctx, method, e.api+path, strings.NewReader(body))
	if auth {
		req.Header.Set("Authorization", "Bearer "+e.token)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// served sends n requests through NGINX and counts the answering instances.
func (e *env) served(n int) map[string]int {
	out := map[string]int{}
	c := &http.Client{Timeout: 3 * time.Second}
	for range n {
		resp, err := c.Get(e.nginx + "/")
		if err != nil {
			out["error"]++
			continue
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			out[fmt.Sprintf("status:%d", resp.StatusCode)]++
			continue
		}
		out[resp.Header.Get("X-Instance")]++
	}
	return out
}

// waitServed polls until a round of requests is answered by exactly want.
func (e *env) waitServed(want ...string) {
	e.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var got map[string]int
	for time.Now().Before(deadline) {
		got = e.served(12)
		ok := len(got) == len(want)
		for _, w := range want {
			ok = ok && got[w] > 0
		}
		if ok {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	e.t.Fatalf("NGINX serves %v, want exactly %v", got, want)
}

func TestImagesEndToEnd(t *testing.T) {
	e := start(t)
	t0 := time.Now()

	if code, _ := e.do("GET", "/v1/apps", "", "", false); code != http.StatusUnauthorized {
		t.Fatalf("API without token: %d, want 401", code)
	}
	app := "apiVersion: v1\nkind: App\nmetadata: {name: demo}\nspec:\n  networking: {external_port: " + appPort + "}\nhealthCheck: {path: /, periodSeconds: 1}\n"
	if code, body := e.do("PUT", "/v1/apps/demo", "application/yaml", app, true); code >= 300 {
		t.Fatalf("PUT app: %d %s", code, body)
	}
	// One instance through the REST API ...
	if code, body := e.do("POST", "/v1/apps/demo/instances", "application/json", fmt.Sprintf(`{"id":"demo-a","ip":%q,"port":9000}`, e.backends["demo-a"]), true); code >= 300 {
		t.Fatalf("POST instance: %d %s", code, body)
	}
	e.waitServed("demo-a")
	t.Logf("REST registration served through NGINX %s after the app was declared", time.Since(t0).Round(time.Millisecond))

	// ... one through the NATS event path, as user client.
	nc, err := nats.Connect(e.natsURL, nats.UserInfo(events.ServiceClient, e.pw[events.ServiceClient]))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	raw := fmt.Sprintf(`{"specversion":"1.0","id":"tc-%d","source":"orchestrator/containers-test","type":"io.orchestry.instance.registered.v1","time":%q,"datacontenttype":"application/json","data":{"instance":{"id":"demo-b","ip":%q,"port":9000}}}`,
		time.Now().UnixNano(), time.Now().UTC().Format(time.RFC3339Nano), e.backends["demo-b"])
	if _, err := js.Publish(e.ctx, events.InstanceRegistered("demo"), []byte(raw)); err != nil {
		t.Fatal(err)
	}
	t1 := time.Now()
	e.waitServed("demo-a", "demo-b")
	t.Logf("NATS registration served through NGINX %s after publishing", time.Since(t1).Round(time.Millisecond))
	if code, body := e.do("GET", "/v1/apps/demo/instances", "", "", true); code != 200 || !strings.Contains(body, `"demo-b"`) {
		t.Fatalf("instances: %d %s", code, body)
	}
	if code, body := e.do("GET", "/v1/status", "", "", true); code != 200 || !strings.Contains(body, `"nginx-1"`) {
		t.Fatalf("status: %d %s", code, body)
	}

	// Removal through the API takes it out of traffic.
	if code, body := e.do("DELETE", "/v1/apps/demo/instances/demo-a", "", "", true); code >= 300 {
		t.Fatalf("DELETE instance: %d %s", code, body)
	}
	e.waitServed("demo-b")

	t.Run("permissions-refused", func(t *testing.T) {
		errs := make(chan error, 8)
		rc, err := nats.Connect(e.natsURL, nats.UserInfo(events.ServiceRenderer, e.pw[events.ServiceRenderer]),
			nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { errs <- err }))
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		_ = rc.Publish(events.InstanceRegistered("demo"), []byte(`{}`))
		_ = rc.Flush()
		select {
		case err := <-errs:
			if !strings.Contains(strings.ToLower(err.Error()), "permissions violation") {
				t.Fatalf("renderer publishing instance.registered: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("renderer may publish instance.registered")
		}
		// The client may not delete a stream.
		cjs, _ := jetstream.New(nc)
		ctx, cancel := context.WithTimeout(e.ctx, 3*time.Second)
		defer cancel()
		if err := cjs.DeleteStream(ctx, events.StreamRouting); err == nil {
			t.Fatal("client deleted the ROUTING stream")
		}
		if _, err := nats.Connect(e.natsURL, nats.UserInfo(events.ServiceRouting, "wrong")); err == nil {
			t.Fatal("wrong password accepted")
		}
	})
}
