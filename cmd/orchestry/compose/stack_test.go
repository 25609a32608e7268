//go:build compose

package compose

// The running compose stack as the scenarios see it: its API, containers,
// NATS and a request loop through both NGINX nodes.

import (
	"bufio"
	"context"
	"encoding/json"
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
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/orchestry/orchestry/pkg/events"
)

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
	Node        string `json:"node"`
	Version     int64  `json:"version"`
	Outcome     string `json:"outcome"`
	RoutingHash string `json:"routing_hash"`
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

// liveOnBoth: both NGINX nodes serve app at revision rev or later
// (GET /v1/apps/{app}/rollout).
func (s *stack) liveOnBoth(app string, rev uint64) bool {
	code, b := s.do("GET", "/v1/apps/"+app+"/rollout", "", "")
	if code != 200 {
		return false
	}
	var r struct {
		Nodes []struct {
			Node           string `json:"node"`
			ServedRevision uint64 `json:"served_revision"`
		} `json:"nodes"`
	}
	if json.Unmarshal(b, &r) != nil {
		return false
	}
	live := 0
	for _, n := range r.Nodes {
		if (n.Node == "nginx-1" || n.Node == "nginx-2") && n.ServedRevision >= rev {
			live++
		}
	}
	return live == 2
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

// storeSeqs are the last sequence of every stream in the NATS server's
// own store, read from its monitoring endpoint on the stack's network
// (which needs no NATS permission).
func (s *stack) storeSeqs(server string) (map[string]uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ip, err := docker("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", s.container(server))
	if err != nil || ip == "" {
		return nil, fmt.Errorf("%s: no address (%v)", server, err)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+ip+":8222/jsz?streams=true", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var jsz struct {
		Accounts []struct {
			Streams []struct {
				Name  string `json:"name"`
				State struct {
					LastSeq uint64 `json:"last_seq"`
				} `json:"state"`
			} `json:"stream_detail"`
		} `json:"account_details"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&jsz); err != nil {
		return nil, fmt.Errorf("%s: jsz: %w", server, err)
	}
	out := map[string]uint64{}
	for _, a := range jsz.Accounts {
		for _, st := range a.Streams {
			out[st.Name] = st.State.LastSeq
		}
	}
	return out, nil
}

// holds: server's own store has every stream up to at least the
// sequences of want.
func (s *stack) holds(server string, want map[string]uint64) bool {
	local, err := s.storeSeqs(server)
	if err != nil {
		return false
	}
	for name, seq := range want {
		if got, ok := local[name]; !ok || got < seq {
			return false
		}
	}
	return true
}

func (l *loop) seenAfter(id string, t time.Time) bool {
	for n := range 2 {
		if v, ok := l.seen.Load(fmt.Sprintf("%d:%s", n, id)); ok && v.(time.Time).After(t) {
			return true
		}
	}
	return false
}
