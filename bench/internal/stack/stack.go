// Package stack runs Orchestry in the benchmark's process as the all-in-one
// wires it: an embedded NATS server with JetStream, the routing service, the
// health service (optional) and the renderer with its NGINX, each with its
// deployed defaults (read from the environment like the services read
// them), on 127.0.0.1 only.
package stack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/orchestry/orchestry/bench/internal/procs"
	"github.com/orchestry/orchestry/pkg/events"
	"github.com/orchestry/orchestry/services/health"
	"github.com/orchestry/orchestry/services/renderer"
	"github.com/orchestry/orchestry/services/routing"
)

// Options says how the stack differs from the deployed defaults.
type Options struct {
	// Dir holds NATS's store and the renderer's data; it must exist.
	Dir string
	// Health runs the health service.
	Health bool
	// Unprobed overrides ORCHESTRY_RENDER_UNPROBED ("" keeps the default).
	Unprobed string
	// Log receives the services' warnings.
	Log zerolog.Logger
}

// Stack is a running Orchestry.
type Stack struct {
	// NC and JS are the benchmark's own connection, as an orchestrator's.
	NC *nats.Conn
	JS jetstream.JetStream
	// API is the routing API's base URL; Token its bearer token.
	API, Token string
	// Prefix is the renderer's NGINX prefix directory.
	Prefix string
	// Renderer is the renderer's configuration as run (defaults included).
	Renderer renderer.Config

	ns    *server.Server
	conns []*nats.Conn
	stops []func()
	errMu sync.Mutex
	errs  []error
}

const token = "bench-token-0123456789"

// Start runs the stack and waits (at most 30 s) for the renderer's first
// live config.
func Start(o Options) (st *Stack, err error) {
	s := &Stack{Token: token}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	s.ns, err = server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true,
		StoreDir: filepath.Join(o.Dir, "nats"), NoSigs: true, NoLog: true})
	if err != nil {
		return nil, fmt.Errorf("stack: nats server: %w", err)
	}
	s.ns.Start()
	if !s.ns.ReadyForConnections(10 * time.Second) {
		return nil, errors.New("stack: nats server not ready within 10s")
	}
	conn := func(name string) (*nats.Conn, error) {
		nc, err := nats.Connect(s.ns.ClientURL(), nats.Name(name), nats.InProcessServer(s.ns))
		if err != nil {
			return nil, fmt.Errorf("stack: nats connect as %s: %w", name, err)
		}
		s.conns = append(s.conns, nc)
		return nc, nil
	}
	if s.NC, err = conn("bench"); err != nil {
		return nil, err
	}
	if s.JS, err = jetstream.New(s.NC); err != nil {
		return nil, fmt.Errorf("stack: jetstream: %w", err)
	}
	reports := make(chan events.RenderReport, 16)
	sub, err := s.NC.Subscribe(events.ConfigRenderedWildcard, func(m *nats.Msg) {
		if ev, err := events.Decode(m.Subject, m.Data); err == nil {
			select {
			case reports <- ev.Payload.(events.RenderReport):
			default:
			}
		}
	})
	if err != nil {
		return nil, fmt.Errorf("stack: subscribe: %w", err)
	}
	defer func() { _ = sub.Unsubscribe() }()

	var rc routing.Config
	if err := env.Parse(&rc); err != nil {
		return nil, fmt.Errorf("stack: routing config: %w", err)
	}
	rc.APIAddr, rc.APIToken = "127.0.0.1:0", token
	nc, err := conn(events.ServiceRouting)
	if err != nil {
		return nil, err
	}
	rt, err := routing.New(nc, rc, o.Log)
	if err != nil {
		return nil, fmt.Errorf("stack: routing: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("stack: api listener: %w", err)
	}
	s.API = "http://" + ln.Addr().String()
	s.run("routing", func(ctx context.Context) error { return rt.Run(ctx, ln) })

	if o.Health {
		var hc health.Config
		if err := env.Parse(&hc); err != nil {
			return nil, fmt.Errorf("stack: health config: %w", err)
		}
		hc.Replica = "bench"
		nc, err := conn(events.ServiceHealth)
		if err != nil {
			return nil, err
		}
		hs, err := health.New(nc, hc, o.Log)
		if err != nil {
			return nil, fmt.Errorf("stack: health: %w", err)
		}
		s.run("health", hs.Run)
	}

	var rd renderer.Config
	if err := env.Parse(&rd); err != nil {
		return nil, fmt.Errorf("stack: renderer config: %w", err)
	}
	status, err := FreePort()
	if err != nil {
		return nil, err
	}
	rd.DataDir, rd.Node, rd.ListenIP, rd.HTTPPort = filepath.Join(o.Dir, "data"), "bench", "127.0.0.1", 0
	rd.StatusAddr = "127.0.0.1:" + strconv.Itoa(status)
	if o.Unprobed != "" {
		rd.Unprobed = o.Unprobed
	}
	if err := os.MkdirAll(rd.DataDir, 0o711); err != nil {
		return nil, fmt.Errorf("stack: %w", err)
	}
	s.Renderer, s.Prefix = rd, filepath.Join(rd.DataDir, "nginx")
	if nc, err = conn(events.ServiceRenderer); err != nil {
		return nil, err
	}
	r, err := renderer.New(nc, rd, o.Log)
	if err != nil {
		return nil, fmt.Errorf("stack: renderer: %w", err)
	}
	s.run("renderer", r.Run)
	deadline := time.After(30 * time.Second)
	for {
		select {
		case rep := <-reports:
			if rep.Outcome == events.OutcomeApplied {
				return s, nil
			}
		case <-deadline:
			return nil, fmt.Errorf("stack: no live config within 30s (errors: %v)", s.Err())
		}
	}
}

// run runs a service until Close.
func (s *Stack) run(name string, run func(context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := run(ctx); err != nil && ctx.Err() == nil {
			s.errMu.Lock()
			s.errs = append(s.errs, fmt.Errorf("%s: %w", name, err))
			s.errMu.Unlock()
		}
	}()
	s.stops = append(s.stops, func() { cancel(); <-done })
}

// Err reports the services that stopped on an error.
func (s *Stack) Err() error {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	return errors.Join(s.errs...)
}

// Close stops the services (the renderer stops its NGINX) in reverse order,
// then NATS.
func (s *Stack) Close() {
	for i := len(s.stops) - 1; i >= 0; i-- {
		s.stops[i]()
	}
	s.stops = nil
	for _, nc := range s.conns {
		nc.Close()
	}
	if s.ns != nil {
		s.ns.Shutdown()
		s.ns.WaitForShutdown()
	}
}

// PutApp declares an app on port through the REST API; extra is YAML
// appended to the manifest (top level: healthCheck, or spec fields
// indented by two spaces).
func (s *Stack) PutApp(name string, port int, extra string) error {
	body := fmt.Sprintf("apiVersion: v1\nkind: App\nmetadata:\n  name: %s\nspec:\n  networking:\n    external_port: %d\n%s", name, port, extra)
	code, out, err := s.Do(http.MethodPut, "/v1/apps/"+name, "application/yaml", body)
	if err != nil {
		return err
	}
	if code != http.StatusCreated && code != http.StatusOK {
		return fmt.Errorf("stack: PUT app %s: %d %s", name, code, out)
	}
	return nil
}

// AddInstance registers an instance through the REST API.
func (s *Stack) AddInstance(app string, in events.Instance) error {
	body, _ := json.Marshal(in)
	code, out, err := s.Do(http.MethodPost, "/v1/apps/"+app+"/instances", "application/json", string(body))
	if err != nil {
		return err
	}
	if code != http.StatusCreated && code != http.StatusOK {
		return fmt.Errorf("stack: POST instance %s/%s: %d %s", app, in.ID, code, out)
	}
	return nil
}

// Register publishes instance.registered.<app> through pkg/events, as an
// orchestrator would.
func (s *Stack) Register(ctx context.Context, app string, in events.Instance) error {
	_, err := events.Publish(ctx, s.JS, "orchestrator/bench", events.InstanceRegistered(app), events.InstanceRegistration{Instance: in})
	if err != nil {
		return fmt.Errorf("stack: register %s/%s: %w", app, in.ID, err)
	}
	return nil
}

// Deregister publishes instance.deregistered.<app>.
func (s *Stack) Deregister(ctx context.Context, app, id string) error {
	_, err := events.Publish(ctx, s.JS, "orchestrator/bench", events.InstanceDeregistered(app), events.InstanceRemoval{ID: id})
	if err != nil {
		return fmt.Errorf("stack: deregister %s/%s: %w", app, id, err)
	}
	return nil
}

// Do calls the API and returns the status and body.
func (s *Stack) Do(method, path, ctype, body string) (int, string, error) {
	req, err := http.NewRequest(method, s.API+path, strings.NewReader(body))
	if err != nil {
		return 0, "", fmt.Errorf("stack: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+s.Token)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := apiClient.Do(req)
	if err != nil {
		return 0, "", fmt.Errorf("stack: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b), nil
}

var apiClient = &http.Client{Timeout: 10 * time.Second}

// LiveUpstreamHas reports whether the live config of app lists the
// instance at 127.0.0.1:port.
func (s *Stack) LiveUpstreamHas(app string, port int) bool {
	b, _ := os.ReadFile(filepath.Join(s.Prefix, "live", "apps", app+".conf"))
	return strings.Contains(string(b), "127.0.0.1:"+strconv.Itoa(port)+" ")
}

// MasterPid is the pid of the renderer's NGINX master.
func (s *Stack) MasterPid() (int, error) { return procs.MasterPid(s.Prefix) }

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
