package apply

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/orchestry/orchestry/pkg/events"
	"github.com/orchestry/orchestry/services/renderer/nginx"
	"github.com/orchestry/orchestry/services/renderer/render"
)

func requireNginx(t *testing.T) string {
	t.Helper()
	bin, err := nginx.Binary("")
	if err == nil {
		return bin
	}
	if os.Getenv("ORCHESTRY_REQUIRE_INTEGRATION") == "1" {
		t.Fatalf("nginx is required (ORCHESTRY_REQUIRE_INTEGRATION=1): %v", err)
	}
	t.Skipf("skipping: %v", err)
	return ""
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func freePort(t *testing.T) int {
	t.Helper()
	ln := listen(t)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// backend answers "backend" on a loopback port.
func backend(t *testing.T) int {
	t.Helper()
	ln := listen(t)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "backend") })}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().(*net.TCPAddr).Port
}

func app(name string, port int, ssl bool, backends ...int) events.RoutingState {
	s := events.RoutingState{App: events.App{
		Metadata: events.Metadata{Name: name},
		Spec:     events.AppSpec{Networking: events.Networking{ExternalPort: port}},
	}, Revision: 1}
	if ssl {
		s.App.Spec.Networking.Domain = name + ".example.test"
		s.App.Spec.Networking.SSL.Enabled = true
	}
	for i, b := range backends {
		s.Instances = append(s.Instances, events.Instance{ID: fmt.Sprintf("i%d", i), IP: "127.0.0.1", Port: b})
	}
	return s
}

func get(port int) string {
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
	if err != nil {
		return "error: " + err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return fmt.Sprintf("%d %s", resp.StatusCode, b)
}

func TestApplyOutcomes(t *testing.T) {
	bin := requireNginx(t)
	dir := t.TempDir()
	prefix := filepath.Join(dir, "nginx")
	sup := nginx.NewSupervisor(bin, prefix, LiveConf(prefix), zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel))
	t.Cleanup(func() { _ = sup.Stop(5 * time.Second) })
	opts := render.Options{Prefix: prefix, StatusListen: fmt.Sprintf("127.0.0.1:%d", freePort(t)), CertDir: filepath.Join(dir, "certs"), WorkerProcesses: 1}
	a, err := New(opts, sup, 3*time.Second, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	web := app("web", freePort(t), false, backend(t))
	busy := listen(t) // a port some other process holds
	defer busy.Close()

	steps := []struct {
		name    string
		apps    []events.RoutingState
		outcome string
		version uint64
		serves  string
	}{
		{"first config goes live", []events.RoutingState{web}, events.OutcomeApplied, 1, "200 backend"},
		{"identical render is not reloaded", []events.RoutingState{web}, events.OutcomeUnchanged, 1, "200 backend"},
		{"nginx -t failure never goes live", []events.RoutingState{web, app("tls", freePort(t), true, backend(t))}, events.OutcomeInvalid, 1, "200 backend"},
		{"reload that cannot bind is rolled back", []events.RoutingState{web, app("clash", busy.Addr().(*net.TCPAddr).Port, false, backend(t))}, events.OutcomeFailed, 1, "200 backend"},
		{"a good change after failures goes live", []events.RoutingState{app("web", web.App.Spec.Networking.ExternalPort, false)}, events.OutcomeApplied, 4, "503"},
	}
	var routing, lastRouting string // the live config's routing hash
	for _, st := range steps {
		r := a.Apply(ctx, st.apps, Certs{})
		if r.Outcome != st.outcome || r.Version != st.version {
			t.Fatalf("%s: outcome %s version %d (err %v), want %s version %d", st.name, r.Outcome, r.Version, r.Err, st.outcome, st.version)
		}
		// The routing hash is the live config's: new only when a new
		// config went live.
		if st.outcome == events.OutcomeApplied {
			routing = r.RoutingHash
		}
		if r.RoutingHash != routing || len(routing) != 64 || (st.outcome == events.OutcomeApplied && routing == lastRouting) {
			t.Fatalf("%s: routing hash %q, live config's %q (before: %q)", st.name, r.RoutingHash, routing, lastRouting)
		}
		lastRouting = routing
		if (r.Err != nil) != (st.outcome == events.OutcomeInvalid || st.outcome == events.OutcomeFailed) {
			t.Fatalf("%s: err = %v", st.name, r.Err)
		}
		// Workers of the previous config may still accept a connection or two
		// while they are told to stop; wait for the new answer, briefly.
		got := get(web.App.Spec.Networking.ExternalPort)
		for i := 0; i < 100 && !strings.HasPrefix(got, st.serves); i++ {
			time.Sleep(20 * time.Millisecond)
			got = get(web.App.Spec.Networking.ExternalPort)
		}
		if !strings.HasPrefix(got, st.serves) {
			elog, _ := os.ReadFile(filepath.Join(prefix, "logs", "error.log"))
			t.Fatalf("%s: web answers %q, want %q\nnginx error.log:\n%s", st.name, got, st.serves, elog)
		}
		target, err := os.Readlink(filepath.Join(prefix, "live"))
		if err != nil || filepath.Base(target) != fmt.Sprint(st.version) {
			t.Fatalf("%s: live -> %q (%v), want version %d", st.name, target, err, st.version)
		}
	}
	// Failed attempts leave no staged directory behind: only the live
	// version and the one before it remain.
	entries, err := os.ReadDir(filepath.Join(prefix, "conf"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if fmt.Sprint(names) != "[1 4]" {
		t.Fatalf("conf/ holds %v, want [1 4]", names)
	}

	// A new Applier (a restarted renderer) continues from the live version
	// and starts NGINX again on it without a new version.
	if err := sup.Stop(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	b, err := New(opts, sup, 3*time.Second, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if b.Version() != 4 {
		t.Fatalf("restarted applier at version %d, want 4", b.Version())
	}
	r := b.Apply(ctx, []events.RoutingState{app("web", web.App.Spec.Networking.ExternalPort, false)}, Certs{})
	if r.Outcome != events.OutcomeApplied || r.Version != 4 || !sup.Running() || r.RoutingHash != routing {
		t.Fatalf("restart: %+v running=%v (routing hash before the restart %q)", r, sup.Running(), routing)
	}
}

func TestLocalStatus(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:8091": "127.0.0.1:8091",
		"10.0.0.5:8091":  "10.0.0.5:8091",
		"0.0.0.0:8091":   "127.0.0.1:8091",
		"[::]:8091":      "[::1]:8091",
	} {
		if got := LocalStatus(in); got != want {
			t.Errorf("LocalStatus(%s) = %s, want %s", in, got, want)
		}
	}
}
