//go:build compose

package compose

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/orchestry/orchestry/pkg/events"
)

const project = "orchestry"

// stack is the running compose stack as the test sees it from the host.
type stack struct {
	t     *testing.T
	env   map[string]string
	api   string
	nodes [2]string // base URLs of the two NGINX nodes
	nc    *nats.Conn
	js    jetstream.JetStream
}

func newStack(t *testing.T) *stack {
	envFile := filepath.Join("..", "..", "..", "deploy", "compose", ".env")
	env, err := readEnv(envFile)
	if err != nil {
		t.Fatalf("%v (start the stack with make compose-up)", err)
	}
	get := func(k, def string) string {
		if v := env[k]; v != "" {
			return v
		}
		return def
	}
	s := &stack{t: t, env: env,
		api:   "http://127.0.0.1:" + get("ORCHESTRY_COMPOSE_API_PORT", "18000"),
		nodes: [2]string{"http://127.0.0.1:" + get("ORCHESTRY_COMPOSE_HTTP_PORT_1", "18081"), "http://127.0.0.1:" + get("ORCHESTRY_COMPOSE_HTTP_PORT_2", "18082")},
	}
	urls := []string{}
	for i, def := range []string{"14222", "14223", "14224"} {
		urls = append(urls, "nats://127.0.0.1:"+get(fmt.Sprintf("ORCHESTRY_COMPOSE_NATS_PORT_%d", i+1), def))
	}
	s.nc, err = nats.Connect(strings.Join(urls, ","), nats.UserInfo(events.ServiceClient, env["ORCHESTRY_NATS_PASSWORD_CLIENT"]),
		nats.IgnoreDiscoveredServers(), nats.MaxReconnects(-1), nats.ReconnectWait(200*time.Millisecond))
	if err != nil {
		t.Fatalf("nats as client: %v", err)
	}
	t.Cleanup(s.nc.Close)
	s.js, _ = jetstream.New(s.nc)
	return s
}

func readEnv(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			out[k] = v
		}
	}
	return out, sc.Err()
}

func docker(args ...string) (string, error) {
	out, err := exec.Command("docker", args...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("docker %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

// container is the id of compose service svc's container.
func (s *stack) container(svc string) string {
	s.t.Helper()
	id, err := docker("ps", "-aq", "--filter", "label=com.docker.compose.project="+project, "--filter", "label=com.docker.compose.service="+svc)
	if err != nil || id == "" {
		s.t.Fatalf("container of %s: %q %v", svc, id, err)
	}
	return id
}

func (s *stack) do(method, path, ctype, body string) (int, []byte) {
	req, _ := http.NewRequest(method, s.api+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+s.env["ORCHESTRY_API_TOKEN"])
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

type nodeStatus struct {
	Node    string `json:"node"`
	Version int64  `json:"version"`
	Outcome string `json:"outcome"`
}

func (s *stack) status() map[string]nodeStatus {
	code, b := s.do("GET", "/v1/status", "", "")
	out := map[string]nodeStatus{}
	if code != 200 {
		return out
	}
	var v struct {
		Nodes []nodeStatus `json:"nodes"`
	}
	_ = json.Unmarshal(b, &v)
	for _, n := range v.Nodes {
		out[n.Node] = n
	}
	return out
}

type instance struct {
	ID     string `json:"id"`
	IP     string `json:"ip"`
	Port   int    `json:"port"`
	Health *struct {
		State string `json:"state"`
	} `json:"health"`
}

func (s *stack) instances(app string) ([]instance, bool) {
	code, b := s.do("GET", "/v1/apps/"+app+"/instances", "", "")
	if code != 200 {
		return nil, false
	}
	var v struct {
		Instances []instance `json:"instances"`
	}
	if json.Unmarshal(b, &v) != nil {
		return nil, false
	}
	return v.Instances, true
}

// waitFor polls cond every 100ms until it holds or d passes, and returns
// how long it took.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return time.Since(start)
}

// versions are the config versions live on the two nodes.
func (s *stack) versions() [2]int64 {
	st := s.status()
	return [2]int64{st["nginx-1"].Version, st["nginx-2"].Version}
}

// advanced: each node has a config version past before (a change went
// live on both; a restarted renderer counts from its own start).
func (s *stack) advanced(before [2]int64) bool {
	st := s.status()
	a, b := st["nginx-1"], st["nginx-2"]
	return a.Version != before[0] && b.Version != before[1] && a.Outcome != "invalid" && b.Outcome != "invalid"
}

// register publishes instance.registered for app over NATS as user client.
func (s *stack) register(app, id, ip string, port int) error {
	evID := fmt.Sprintf("compose-%s-%d", id, time.Now().UnixNano())
	raw := fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":"orchestrator/compose-test","type":"io.orchestry.instance.registered.v1","time":%q,"datacontenttype":"application/json","data":{"instance":{"id":%q,"ip":%q,"port":%d}}}`,
		evID, time.Now().UTC().Format(time.RFC3339Nano), id, ip, port)
	// As a careful publisher does: retried with the same message id (the
	// stream drops duplicates) while a stream elects a new leader.
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := s.js.Publish(ctx, events.InstanceRegistered(app), []byte(raw), jetstream.WithMsgID(evID))
		cancel()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// loop sends requests alternately to both NGINX nodes until stopped, about
// 40 a second; a failed one is retried once on the other node.
type loop struct {
	total, failedNode [2]atomic.Int64
	failedBoth        atomic.Int64
	seen              sync.Map // instance -> last time seen, per node: "n:id"
	mu                sync.Mutex
	failures          []string
	stop              chan struct{}
	done              chan struct{}
	once              sync.Once
}

func (s *stack) startLoop() *loop {
	l := &loop{stop: make(chan struct{}), done: make(chan struct{})}
	c := &http.Client{Timeout: 3 * time.Second}
	get := func(n int) (string, error) {
		resp, err := c.Get(s.nodes[n] + "/")
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			return "", fmt.Errorf("status %d: %.80s", resp.StatusCode, b)
		}
		return resp.Header.Get("X-Instance"), nil
	}
	go func() {
		defer close(l.done)
		tick := time.NewTicker(25 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-l.stop:
				return
			case <-tick.C:
			}
			n := i % 2
			l.total[n].Add(1)
			id, err := get(n)
			if err == nil {
				l.seen.Store(fmt.Sprintf("%d:%s", n, id), time.Now())
				continue
			}
			l.failedNode[n].Add(1)
			l.mu.Lock()
			l.failures = append(l.failures, fmt.Sprintf("%s nginx-%d: %v", time.Now().Format("15:04:05.000"), n+1, err))
			l.mu.Unlock()
			if _, err2 := get(1 - n); err2 != nil {
				l.failedBoth.Add(1)
			}
		}
	}()
	return l
}

func (l *loop) snapshot() (total, node1, node2, both int64) {
	return l.total[0].Load() + l.total[1].Load(), l.failedNode[0].Load(), l.failedNode[1].Load(), l.failedBoth.Load()
}

func (l *loop) halt() {
	l.once.Do(func() { close(l.stop) })
	<-l.done
}

// served reports whether both nodes answered with id since t.
func (l *loop) servedSince(id string, t time.Time) bool {
	for n := range 2 {
		v, ok := l.seen.Load(fmt.Sprintf("%d:%s", n, id))
		if !ok || v.(time.Time).Before(t) {
			return false
		}
	}
	return true
}

func TestComposeScenarios(t *testing.T) {
	s := newStack(t)
	waitFor(t, 60*time.Second, "stack up", func() bool { v := s.versions(); return v[0] > 0 && v[1] > 0 })

	// Streams and buckets are replicated three times.
	t.Run("replicas", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, cfg := range events.Streams(3) {
			st, err := s.js.Stream(ctx, cfg.Name)
			if err != nil {
				t.Fatalf("stream %s: %v", cfg.Name, err)
			}
			if r := st.CachedInfo().Config.Replicas; r != 3 {
				t.Errorf("stream %s: %d replicas", cfg.Name, r)
			}
		}
		kv, err := s.js.KeyValue(ctx, events.BucketApps)
		if err != nil {
			t.Fatal(err)
		}
		st, _ := kv.Status(ctx)
		if st.(*jetstream.KeyValueBucketStatus).StreamInfo().Config.Replicas != 3 {
			t.Errorf("bucket apps not replicated x3")
		}
	})

	// An extra backend on the stack's network, not registered by itself.
	net := s.networkOf(s.container("demo-1"))
	extra, err := docker("run", "-d", "--rm", "--network", net, "--no-healthcheck", "--label", "orchestry.compose-test=1",
		"orchestry/orchestry:"+orDefault(s.env["ORCHESTRY_TAG"], "dev"), "demo", "-listen", "0.0.0.0:9000", "-id", "extra")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = docker("rm", "-f", extra) })
	extraIP, _ := docker("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", extra)

	// The app "events" receives numbered registrations; its instances
	// point nowhere and are never served.
	if code, b := s.do("PUT", "/v1/apps/events", "application/yaml", "apiVersion: v1\nkind: App\nmetadata: {name: events}\nspec:\n  networking: {external_port: 8099}\nhealthCheck: {protocol: TCP, periodSeconds: 30}\n"); code >= 300 {
		t.Fatalf("PUT events: %d %s", code, b)
	}
	published := 0
	publish := func(t *testing.T, n int) {
		t.Helper()
		for range n {
			if err := s.register("events", fmt.Sprintf("ev-%03d", published), fmt.Sprintf("10.255.%d.%d", published/250, published%250+1), 9); err != nil {
				t.Fatalf("publish ev-%03d: %v", published, err)
			}
			published++
		}
	}

	l := s.startLoop()
	defer l.halt()
	report := func(name string) {
		total, n1, n2, both := l.snapshot()
		t.Logf("%s: loop so far %d requests, failed on nginx-1 %d, on nginx-2 %d, failed on both nodes %d", name, total, n1, n2, both)
	}
	publish(t, 20)

	t.Run("nats-node-loss", func(t *testing.T) {
		c := s.container("nats-2")
		_, _ = docker("update", "--restart=no", c)
		defer func() { _, _ = docker("update", "--restart=unless-stopped", c) }()
		_, b1, b2, _ := l.snapshot()
		before := b1 + b2
		beforeBoth := l.failedBoth.Load()
		if _, err := docker("kill", c); err != nil {
			t.Fatal(err)
		}
		defer func() { _, _ = docker("start", c) }()
		killed := time.Now()
		publish(t, 20)
		v := s.versions()
		if err := s.register("demo", "extra", extraIP, 9000); err != nil {
			t.Fatal(err)
		}
		d := waitFor(t, 60*time.Second, "instance registered with a NATS node down is served on both nodes", func() bool { return l.servedSince("extra", killed) })
		t.Logf("nats-2 down: registration through NATS served on both nodes %s after the kill (%s after publishing); both nodes past their versions %v: %v",
			time.Since(killed).Round(time.Millisecond), d.Round(time.Millisecond), v, s.advanced(v))
		publish(t, 20)
		if _, err := docker("start", c); err != nil {
			t.Fatal(err)
		}
		restarted := time.Now()
		publish(t, 20)
		// nats-2 catches up: every stream it holds a replica of is current.
		waitFor(t, 60*time.Second, "nats-2 caught up", func() bool { return s.caughtUp("nats-2") })
		_, a1, a2, _ := l.snapshot()
		after := a1 + a2
		t.Logf("nats-2 restarted: a current replica of every stream %s after its start; failed requests meanwhile: %d (on both nodes %d)",
			time.Since(restarted).Round(time.Millisecond), after-before, l.failedBoth.Load()-beforeBoth)
		if after != before || l.failedBoth.Load() != beforeBoth {
			t.Errorf("requests failed around the NATS node loss")
		}
	})

	t.Run("zero-lost-events", func(t *testing.T) {
		d := waitFor(t, 30*time.Second, "every registration applied", func() bool {
			ins, ok := s.instances("events")
			return ok && len(ins) >= published
		})
		ins, _ := s.instances("events")
		seen := map[string]int{}
		for _, in := range ins {
			seen[in.ID]++
		}
		for i := range published {
			if id := fmt.Sprintf("ev-%03d", i); seen[id] != 1 {
				t.Errorf("%s applied %d times", id, seen[id])
			}
		}
		if len(ins) != published {
			t.Errorf("%d instances, %d registrations published", len(ins), published)
		}
		t.Logf("%d registrations published (20 before, 40 while nats-2 was down, 20 as it came back): %d applied, each once (all there %s after the check began)", published, len(ins), d.Round(time.Millisecond))
	})
	report("after NATS node loss")

	for _, svc := range []string{"routing", "health-1", "health-2", "metrics", "certs", "nginx-1", "nginx-2"} {
		t.Run("kill-9-"+svc, func(t *testing.T) {
			c := s.container(svc)
			_, n1, n2, both := l.snapshot()
			restarts := s.restartCount(c)
			pid, err := docker("inspect", "-f", "{{.State.Pid}}", c)
			if err != nil {
				t.Fatal(err)
			}
			p, _ := strconv.Atoi(pid)
			if p <= 0 { // not running: never signal a process group
				t.Fatalf("%s is not running (pid %q)", svc, pid)
			}
			if err := syscall.Kill(p, syscall.SIGKILL); err != nil {
				t.Fatalf("kill -9 %s (pid %d): %v", svc, p, err)
			}
			killed := time.Now()
			up := waitFor(t, 30*time.Second, svc+" restarted by its policy", func() bool {
				return s.restartCount(c) > restarts && s.running(c)
			})
			// Converged: a change made now goes live on both nodes and the
			// instance becomes healthy.
			id := "conv-" + svc
			v := s.versions()
			waitFor(t, 60*time.Second, "API answers after "+svc+" restart", func() bool {
				code, _ := s.do("POST", "/v1/apps/demo/instances", "application/json", fmt.Sprintf(`{"id":%q,"ip":%q,"port":9000}`, id, extraIP))
				return code >= 200 && code < 300 // 0 is no answer at all
			})
			waitFor(t, 60*time.Second, svc+": change live on both nodes and healthy", func() bool {
				ins, _ := s.instances("demo")
				healthy := false
				for _, in := range ins {
					healthy = healthy || (in.ID == id && in.Health != nil && in.Health.State == "healthy")
				}
				return healthy && s.advanced(v)
			})
			conv := time.Since(killed)
			s.do("DELETE", "/v1/apps/demo/instances/"+id, "", "")
			_, m1, m2, mboth := l.snapshot()
			t.Logf("kill -9 %s: running again after %s, converged (a new instance healthy and live on both nodes) %s after the kill; failed requests: nginx-1 %d, nginx-2 %d, on both nodes %d",
				svc, up.Round(time.Millisecond), conv.Round(time.Millisecond), m1-n1, m2-n2, mboth-both)
			if mboth != both {
				t.Errorf("%d requests failed on both nodes", mboth-both)
			}
			if !strings.HasPrefix(svc, "nginx-") && (m1 != n1 || m2 != n2) {
				t.Errorf("requests failed while %s was down: nginx-1 %d, nginx-2 %d", svc, m1-n1, m2-n2)
			}
		})
	}
	report("after kill -9 of every service")

	t.Run("backend-dies", func(t *testing.T) {
		c := s.container("demo-3")
		_, _ = docker("update", "--restart=no", c)
		defer func() {
			_, _ = docker("update", "--restart=unless-stopped", c)
			_, _ = docker("start", c)
		}()
		_, n1, n2, both := l.snapshot()
		if _, err := docker("kill", c); err != nil {
			t.Fatal(err)
		}
		killed := time.Now()
		// Out of rotation: no answer from demo-3 on either node for 2 s
		// (about 40 requests each), and both nodes at one version.
		d := waitFor(t, 60*time.Second, "demo-3 out of rotation on both nodes", func() bool {
			ins, _ := s.instances("demo")
			unhealthy := false
			for _, in := range ins {
				unhealthy = unhealthy || (in.ID == "demo-3" && in.Health != nil && in.Health.State != "healthy")
			}
			return unhealthy && !l.seenAfter("demo-3", time.Now().Add(-2*time.Second)) && time.Since(killed) > 2*time.Second
		})
		st := s.status()
		_, m1, m2, mboth := l.snapshot()
		t.Logf("demo-3 killed: out of rotation on both nodes within %s (health: unhealthy), nodes at version %d and %d; failed requests: nginx-1 %d, nginx-2 %d, on both %d",
			d.Round(time.Millisecond), st["nginx-1"].Version, st["nginx-2"].Version, m1-n1, m2-n2, mboth-both)
		if st["nginx-1"].Version != st["nginx-2"].Version {
			t.Logf("config versions differ between the nodes (each counts its own reloads): %v", st)
		}
	})

	t.Run("permission-refused", func(t *testing.T) {
		errs := make(chan error, 4)
		nc, err := nats.Connect(s.natsURL(), nats.UserInfo(events.ServiceRenderer, s.env["ORCHESTRY_NATS_PASSWORD_RENDERER"]),
			nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { errs <- err }))
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		// The renderer may not register instances nor read the CA.
		_ = nc.Publish(events.InstanceRegistered("demo"), []byte(`{}`))
		_ = nc.Flush()
		select {
		case err := <-errs:
			if !errors.Is(err, nats.ErrPermissionViolation) && !strings.Contains(strings.ToLower(err.Error()), "permissions violation") {
				t.Fatalf("unexpected error %v", err)
			}
			t.Logf("renderer publishing instance.registered: refused by NATS: %v", err)
		case <-time.After(5 * time.Second):
			t.Fatal("publish by the renderer to instance.registered was not refused")
		}
		js, _ := jetstream.New(nc)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		if _, err := js.KeyValue(ctx, events.BucketCertsIssuer); err == nil {
			t.Fatal("renderer opened the certs-issuer bucket")
		} else {
			t.Logf("renderer opening certs-issuer: %v", err)
		}
		// A wrong password is refused outright.
		if _, err := nats.Connect(s.natsURL(), nats.UserInfo(events.ServiceRouting, "wrong")); err == nil {
			t.Fatal("wrong password accepted")
		} else {
			t.Logf("routing with a wrong password: %v", err)
		}
	})

	l.halt()
	total, n1, n2, both := l.snapshot()
	t.Logf("request loop: %d requests, failed on nginx-1 %d, on nginx-2 %d, failed on both nodes %d", total, n1, n2, both)
	l.mu.Lock()
	for i, f := range l.failures {
		if i == 20 {
			t.Logf("... %d more", len(l.failures)-20)
			break
		}
		t.Log(f)
	}
	l.mu.Unlock()
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func (s *stack) natsURL() string {
	return "nats://127.0.0.1:" + orDefault(s.env["ORCHESTRY_COMPOSE_NATS_PORT_1"], "14222")
}

func (s *stack) networkOf(c string) string {
	s.t.Helper()
	out, err := docker("inspect", "-f", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}}{{end}}", c)
	if err != nil {
		s.t.Fatal(err)
	}
	return out
}

func (s *stack) restartCount(c string) int {
	out, _ := docker("inspect", "-f", "{{.RestartCount}}", c)
	n, _ := strconv.Atoi(out)
	return n
}

func (s *stack) running(c string) bool {
	out, _ := docker("inspect", "-f", "{{.State.Running}}", c)
	return out == "true"
}

// caughtUp: every stream lists server as a current replica without lag.
func (s *stack) caughtUp(server string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	names := s.js.StreamNames(ctx)
	n := 0
	for name := range names.Name() {
		st, err := s.js.Stream(ctx, name)
		if err != nil {
			return false
		}
		ci := st.CachedInfo().Cluster
		if ci == nil {
			return false
		}
		ok := ci.Leader == server
		for _, r := range ci.Replicas {
			// Current: caught up to within the leader's recent writes
			// (busy streams such as KV_members always show some lag).
			if r.Name == server && r.Current && !r.Offline {
				ok = true
			}
		}
		if !ok {
			return false
		}
		n++
	}
	return names.Err() == nil && n > 0
}

func (l *loop) seenAfter(id string, t time.Time) bool {
	for n := range 2 {
		if v, ok := l.seen.Load(fmt.Sprintf("%d:%s", n, id)); ok && v.(time.Time).After(t) {
			return true
		}
	}
	return false
}
