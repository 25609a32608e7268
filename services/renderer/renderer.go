// Package renderer keeps one NGINX node in step with the event stream: it
// follows routing.changed and instance.health, renders the whole config,
// validates it with `nginx -t`, makes it live with a graceful reload,
// confirms the new version answers, and reports each attempt on
// config.rendered.<node>. It also supervises the NGINX process, and
// answers requests for its live config on renderer.config.<node>.
package renderer

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/orchestry/orchestry/pkg/events"
	"github.com/orchestry/orchestry/services/renderer/apply"
	"github.com/orchestry/orchestry/services/renderer/certsync"
	"github.com/orchestry/orchestry/services/renderer/model"
	"github.com/orchestry/orchestry/services/renderer/nginx"
	"github.com/orchestry/orchestry/services/renderer/render"
	"github.com/orchestry/orchestry/services/renderer/tlsfiles"
)

// Config is the renderer's configuration, read from the environment.
type Config struct {
	// DataDir holds the NGINX prefix (configs, pid, logs, temp files) under
	// DataDir/nginx and certificates under DataDir/certs.
	DataDir string `env:"ORCHESTRY_DATA_DIR" envDefault:".data"`
	// Node names this NGINX node in config.rendered.<node>.
	Node string `env:"ORCHESTRY_NODE" envDefault:"local"`
	// NginxBin is the nginx executable.
	NginxBin string `env:"ORCHESTRY_NGINX_BIN" envDefault:"nginx"`
	// StatusAddr is where NGINX's internal status server (config version,
	// /_health, stub_status) listens: loopback, or a private or unspecified
	// address on an internal network, where loopback and private clients
	// alone may ask.
	StatusAddr string `env:"ORCHESTRY_NGINX_STATUS_ADDR" envDefault:"127.0.0.1:8091"`
	// StatusAdvertise is the host:port other hosts reach the status server
	// at (e.g. the node's name on an internal network), published in
	// config.rendered for the metrics service; empty publishes StatusAddr
	// (loopback when it listens on every interface).
	StatusAdvertise string `env:"ORCHESTRY_NGINX_STATUS_ADVERTISE"`
	// Workers is NGINX's worker_processes; 0 means auto.
	Workers int `env:"ORCHESTRY_NGINX_WORKERS" envDefault:"0"`
	// Coalesce is how long the renderer gathers further changes after the
	// first one before it renders, so a burst costs one reload.
	Coalesce time.Duration `env:"ORCHESTRY_RENDER_COALESCE" envDefault:"250ms"`
	// ConfirmTimeout bounds the wait for a reloaded NGINX to answer with
	// the new version.
	ConfirmTimeout time.Duration `env:"ORCHESTRY_RELOAD_CONFIRM_TIMEOUT" envDefault:"10s"`
	// Unprobed says what to do with an instance the health service has not
	// reported on yet: "hold" keeps it out of traffic until it is reported
	// healthy; "serve" sends it traffic until health says otherwise (for a
	// deployment without a health service).
	Unprobed string `env:"ORCHESTRY_RENDER_UNPROBED" envDefault:"hold"`
	// SlowStart is the window over which a recovered instance's weight is
	// stepped up (model.SlowStartSteps renders); 0 turns slow start off.
	SlowStart time.Duration `env:"ORCHESTRY_RENDER_SLOW_START" envDefault:"30s"`
	// PanicPercent is the panic floor: below this share of healthy
	// instances, an app's ejected instances are served as backups; 0 never.
	PanicPercent int `env:"ORCHESTRY_RENDER_PANIC_PERCENT" envDefault:"50"`
	// Syslog is the metrics service's syslog address (host:port): NGINX
	// sends every request there as a JSON line. Empty writes a plain access
	// log under DataDir/nginx/logs instead.
	Syslog string `env:"ORCHESTRY_NGINX_SYSLOG"`
	// SelfSigned creates a self-signed certificate for a TLS app whose
	// certificate files are missing or unusable (development only; in
	// production the certs service provides them). Without it such an app
	// is left out of the config and reported, and the others go live.
	SelfSigned bool `env:"ORCHESTRY_RENDER_SELF_SIGNED" envDefault:"false"`
	// ListenIP, when set, is the one address NGINX's app servers listen
	// on; empty listens on every address.
	ListenIP string `env:"ORCHESTRY_NGINX_LISTEN_IP"`
	// HTTPPort is the plain HTTP port of the servers redirecting TLS apps
	// to HTTPS and answering ACME HTTP-01 challenges.
	HTTPPort int `env:"ORCHESTRY_NGINX_HTTP_PORT" envDefault:"80"`
	// ACMEChallenge is the certs service's HTTP-01 responder (ip:port):
	// NGINX proxies /.well-known/acme-challenge/ on HTTPPort there, also
	// for TLS apps still waiting for their first certificate. Empty routes
	// no challenge.
	ACMEChallenge string `env:"ORCHESTRY_RENDER_ACME_CHALLENGE"`
	// StopGrace bounds NGINX's graceful shutdown before it is killed.
	StopGrace time.Duration `env:"ORCHESTRY_NGINX_STOP_GRACE" envDefault:"10s"`
	// NatsReplicas is how many NATS servers hold each stream and bucket
	// this service provisions (3 on a three-node JetStream cluster).
	NatsReplicas int `env:"ORCHESTRY_NATS_REPLICAS" envDefault:"1"`
}

// Service is one renderer bound to one NGINX node.
type Service struct {
	cfg     Config
	nc      *nats.Conn
	prefix  string // NGINX prefix directory
	js      jetstream.JetStream
	log     zerolog.Logger
	model   *model.Model
	sup     *nginx.Supervisor
	applier *apply.Applier
	certDir string
	certs   tlsfiles.Checker // only the render loop uses it
	sync    *certsync.Sync
	kick    chan struct{}
	started time.Time // changes published before it are not timed
	metrics *promMetrics
}

// New checks the configuration, finds nginx and prepares the service.
func New(nc *nats.Conn, cfg Config, log zerolog.Logger) (*Service, error) {
	if err := events.CheckName(cfg.Node); err != nil {
		return nil, fmt.Errorf("renderer: ORCHESTRY_NODE %q %w", cfg.Node, err)
	}
	if cfg.Unprobed != "hold" && cfg.Unprobed != "serve" {
		return nil, fmt.Errorf("renderer: ORCHESTRY_RENDER_UNPROBED must be hold or serve, not %q", cfg.Unprobed)
	}
	if cfg.SlowStart < 0 {
		return nil, fmt.Errorf("renderer: ORCHESTRY_RENDER_SLOW_START must not be negative, not %s", cfg.SlowStart)
	}
	if cfg.StatusAdvertise != "" {
		if err := events.CheckHostPort(cfg.StatusAdvertise); err != nil {
			return nil, fmt.Errorf("renderer: ORCHESTRY_NGINX_STATUS_ADVERTISE %q %w", cfg.StatusAdvertise, err)
		}
	}
	if cfg.PanicPercent < 0 || cfg.PanicPercent > 100 {
		return nil, fmt.Errorf("renderer: ORCHESTRY_RENDER_PANIC_PERCENT must be 0-100, not %d", cfg.PanicPercent)
	}
	bin, err := nginx.Binary(cfg.NginxBin)
	if err != nil {
		return nil, fmt.Errorf("renderer: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("renderer: jetstream: %w", err)
	}
	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("renderer: data dir: %w", err)
	}
	log = log.With().Str("service", "renderer").Str("node", cfg.Node).Logger()
	prefix := filepath.Join(dataDir, "nginx")
	sup := nginx.NewSupervisor(bin, prefix, apply.LiveConf(prefix), log)
	opts := render.Options{
		Prefix:          prefix,
		StatusListen:    cfg.StatusAddr,
		CertDir:         filepath.Join(dataDir, "certs"),
		WorkerProcesses: cfg.Workers,
		Node:            cfg.Node,
		Syslog:          cfg.Syslog,
		HTTPPort:        cfg.HTTPPort,
		ACMEChallenge:   cfg.ACMEChallenge,
		ListenIP:        cfg.ListenIP,
	}
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("renderer: settings (ORCHESTRY_NGINX_STATUS_ADDR, ORCHESTRY_NGINX_WORKERS, ORCHESTRY_NGINX_SYSLOG, ORCHESTRY_NGINX_HTTP_PORT, ORCHESTRY_NGINX_LISTEN_IP, ORCHESTRY_RENDER_ACME_CHALLENGE, ORCHESTRY_DATA_DIR): %w", err)
	}
	applier, err := apply.New(opts, sup, cfg.ConfirmTimeout, log)
	if err != nil {
		return nil, fmt.Errorf("renderer: %w", err)
	}
	policy := model.Policy{HoldUnprobed: cfg.Unprobed == "hold", SlowStart: cfg.SlowStart, PanicPercent: cfg.PanicPercent}
	s := &Service{
		cfg: cfg, nc: nc, prefix: prefix, js: js, log: log, model: model.New(policy), sup: sup, applier: applier, certDir: opts.CertDir,
		kick: make(chan struct{}, 1), started: time.Now(), metrics: newPromMetrics(),
	}
	s.sync = certsync.New(js, opts.CertDir, s.changed, log)
	return s, nil
}

// Run follows the events and keeps NGINX in step until ctx ends, then stops
// NGINX gracefully.
func (s *Service) Run(ctx context.Context) error {
	if err := events.ProvisionFor(ctx, s.js, s.cfg.NatsReplicas, events.ServiceRenderer); err != nil {
		return fmt.Errorf("renderer: %w", err)
	}
	// Answers GET /v1/nodes/<node>/config (through routing) from disk.
	live, err := serveLiveConfig(s.nc, s.cfg.Node, s.prefix, s.log)
	if err != nil {
		return err
	}
	defer func() { _ = live.Unsubscribe() }()
	routing, err := s.follow(ctx, events.StreamRouting, events.RoutingChangedWildcard, jetstream.DeliverLastPerSubjectPolicy)
	if err != nil {
		return err
	}
	defer routing.Stop()
	health, err := s.follow(ctx, events.StreamHealth, events.InstanceHealthWildcard, jetstream.DeliverAllPolicy)
	if err != nil {
		return err
	}
	defer health.Stop()
	syncDone := make(chan error, 1)
	syncCtx, stopSync := context.WithCancel(ctx)
	go func() { syncDone <- s.sync.Run(syncCtx) }()
	defer func() {
		stopSync()
		if err := <-syncDone; err != nil {
			s.log.Error().Err(err).Msg("certificate sync")
		}
	}()
	defer func() {
		if err := s.sup.Stop(s.cfg.StopGrace); err != nil {
			s.log.Error().Err(err).Msg("stop nginx")
		}
	}()

	// Render once the replay has caught up, so the first config NGINX
	// serves is the whole current state, not a prefix of it.
	catchUp := time.NewTimer(30 * time.Second)
	defer catchUp.Stop()
	for _, f := range []struct {
		what     string
		caughtUp <-chan struct{}
	}{{events.StreamRouting, routing.CaughtUp()}, {events.StreamHealth, health.CaughtUp()}, {"certificates", s.sync.CaughtUp()}} {
		select {
		case <-f.caughtUp:
		case <-catchUp.C:
			s.log.Warn().Str("replay", f.what).Msg("replay not caught up within 30s; rendering what is known")
		case <-ctx.Done():
			return nil
		}
	}
	next := s.cycle(ctx)
	step := time.NewTimer(time.Hour)
	defer step.Stop()
	for {
		// A pending slow-start step renders without any event.
		step.Stop()
		var stepC <-chan time.Time
		if !next.IsZero() {
			step.Reset(time.Until(next))
			stepC = step.C
		}
		select {
		case <-ctx.Done():
			return nil
		case <-s.kick:
		case <-stepC:
		}
		// Gather the rest of a burst, then render once.
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(s.cfg.Coalesce):
		}
		select {
		case <-s.kick:
		default:
		}
		next = s.cycle(ctx)
	}
}

// changed asks the loop for a render; repeated asks before it runs merge.
func (s *Service) changed() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// cycle renders, applies and reports once. It returns when the next
// slow-start step is due (zero: none).
func (s *Service) cycle(ctx context.Context) time.Time {
	unserved := s.model.Unserved() // before the snapshot: all of it is in there
	apps, next := s.model.Snapshot(time.Now())
	apps, problems, certs := s.checkCertificates(apps)
	s.applier.SetSyslog(s.syslogTarget(ctx))
	res := s.applier.Apply(ctx, apps, certs)
	s.metrics.observe(res)
	ev := s.log.Info()
	switch {
	case res.Err != nil && ctx.Err() != nil:
		ev = s.log.Warn().Err(res.Err) // stopping mid-cycle
	case res.Err != nil:
		ev = s.log.Error().Err(res.Err)
	}
	ev.Str("outcome", res.Outcome).Uint64("version", res.Version).Uint64("attempted", res.Attempted).
		Int("apps", res.Apps).Dur("render", res.Render).Dur("validate", res.Validate).Dur("reload", res.Reload).
		Msg("render cycle")
	rep := events.RenderReport{
		Node:        s.cfg.Node,
		Version:     res.Version,
		Attempted:   res.Attempted,
		Hash:        res.Hash,
		RoutingHash: res.RoutingHash,
		Outcome:     res.Outcome,
		Apps:        res.Apps,
		RenderMS:    ms(res.Render),
		ValidateMS:  ms(res.Validate),
		ReloadMS:    ms(res.Reload),
		Revision:    uint64(time.Now().UnixNano()),
		StatusAddr:  s.statusAdvertise(),
	}
	if res.Err != nil {
		rep.Error = clip(res.Err.Error(), 4096)
	}
	rep.Problems = problems
	if res.Outcome == events.OutcomeApplied || res.Outcome == events.OutcomeUnchanged {
		// NGINX serves this config now (applied: it answered the version).
		now := time.Now().UTC()
		left := make(map[string]bool, len(problems))
		for _, p := range problems {
			left[p.App] = true
		}
		rep.LiveAt, rep.Served = &now, s.model.MarkServed(unserved, left)
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, err := events.Publish(pctx, s.js, "renderer/"+s.cfg.Node, events.ConfigRendered(s.cfg.Node), rep); err != nil {
		s.log.Error().Err(err).Msg("publish config.rendered")
	}
	return next
}

// statusAdvertise is the status address published in reports.
func (s *Service) statusAdvertise() string {
	if s.cfg.StatusAdvertise != "" {
		return s.cfg.StatusAdvertise
	}
	return apply.LocalStatus(s.cfg.StatusAddr)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// follow replays and then follows filter on stream (events.Follow: no
// durable state, a restarted renderer replays again and converges).
func (s *Service) follow(ctx context.Context, stream, filter string, deliver jetstream.DeliverPolicy) (*events.Follower, error) {
	f, err := events.Follow(ctx, s.js, events.FollowOptions{
		Stream: stream, Subjects: []string{filter}, Deliver: deliver, Source: "renderer/" + s.cfg.Node,
		Rejected: func(subject string, err error) {
			s.log.Warn().Err(err).Str("subject", subject).Msg("event rejected")
		},
		Trouble: func(err error) { s.log.Warn().Err(err).Msg("event consumer") },
	}, s.handle)
	if err != nil {
		return nil, fmt.Errorf("renderer: %w", err)
	}
	return f, nil
}

// handle applies one event to the model.
func (s *Service) handle(ev events.Event) {
	var changed bool
	switch p := ev.Payload.(type) {
	case events.RoutingState:
		// A change published since this renderer started is timed until
		// it is served; an older one (a replay) is not.
		var published time.Time
		if ev.Envelope.Time.After(s.started) {
			published = ev.Envelope.Time
		}
		changed = s.model.ApplyRoutingChange(p, published)
	case events.HealthState:
		changed = s.model.ApplyHealth(p, time.Now())
	}
	if changed {
		s.changed()
	}
}

// checkCertificates leaves out the TLS apps whose certificate files cannot
// serve them (after creating self-signed ones when so configured), so one
// app's missing certificate never keeps the others from going live. Each
// app left out is returned as a problem and its domain as awaiting a
// certificate; certs also identifies the certificate files of the apps
// kept (tlsfiles.Identity).
func (s *Service) checkCertificates(apps []events.RoutingState) (_ []events.RoutingState, _ []events.AppProblem, certs apply.Certs) {
	var problems []events.AppProblem
	var ids []string
	out := apps[:0:0]
	now := time.Now()
	for _, a := range apps {
		n := a.App.Spec.Networking
		if !n.SSL.Enabled {
			out = append(out, a)
			continue
		}
		err := s.certs.Check(s.certDir, n.Domain, now)
		if err != nil && s.cfg.SelfSigned {
			if werr := tlsfiles.WriteSelfSigned(s.certDir, n.Domain, now); werr != nil {
				err = werr
			} else {
				s.log.Warn().Str("app", a.App.Metadata.Name).Str("domain", n.Domain).Msg("self-signed certificate created (ORCHESTRY_RENDER_SELF_SIGNED)")
				err = s.certs.Check(s.certDir, n.Domain, now)
			}
		}
		if err != nil {
			s.log.Warn().Err(err).Str("app", a.App.Metadata.Name).Msg("TLS app left out of the config")
			problems = append(problems, events.AppProblem{App: a.App.Metadata.Name, Reason: clip("left out: "+err.Error(), 1024)})
			certs.Awaiting = append(certs.Awaiting, n.Domain)
			continue
		}
		ids = append(ids, n.Domain+"="+tlsfiles.Identity(s.certDir, n.Domain))
		out = append(out, a)
	}
	slices.Sort(ids)
	certs.Identity = strings.Join(ids, "\n")
	return out, problems, certs
}
