// Package routing is Orchestry's source of truth for apps and their
// instances. It stores them in the JetStream KV bucket events.BucketApps,
// serves the REST API under /v1, applies instance registrations and removals
// that other systems publish on NATS, publishes the resolved state of every
// app on routing.changed.<app> (as an outbox driven by the KV watcher),
// reports the render status of every NGINX node from config.rendered.<node>
// (with each app's rollout over the nodes), keeps a feed of recent events
// for the API, and asks a node's renderer for its live config.
package routing

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/orchestry/orchestry/pkg/events"
	"github.com/orchestry/orchestry/services/routing/api"
	"github.com/orchestry/orchestry/services/routing/auto"
	"github.com/orchestry/orchestry/services/routing/certview"
	"github.com/orchestry/orchestry/services/routing/console"
	"github.com/orchestry/orchestry/services/routing/feed"
	"github.com/orchestry/orchestry/services/routing/healthview"
	"github.com/orchestry/orchestry/services/routing/intake"
	"github.com/orchestry/orchestry/services/routing/load"
	"github.com/orchestry/orchestry/services/routing/nodeconfig"
	"github.com/orchestry/orchestry/services/routing/outbox"
	"github.com/orchestry/orchestry/services/routing/status"
	"github.com/orchestry/orchestry/services/routing/store"
	"github.com/orchestry/orchestry/services/routing/trafficview"
)

// Config configures the routing service; the env tags are read by
// github.com/caarlos0/env. Zero values get the defaults in New.
type Config struct {
	// APIAddr is the listen address of the REST API (used by cmd/routing).
	APIAddr string `env:"ORCHESTRY_API_ADDR" envDefault:"127.0.0.1:8000"`
	// APIToken is the bearer token every API request must carry. Required.
	APIToken string `env:"ORCHESTRY_API_TOKEN"`
	// MaxBodyBytes limits API request bodies.
	MaxBodyBytes int64 `env:"ORCHESTRY_API_MAX_BODY_BYTES" envDefault:"1048576"`
	// ShutdownTimeout bounds the graceful shutdown of the API.
	ShutdownTimeout time.Duration `env:"ORCHESTRY_SHUTDOWN_TIMEOUT" envDefault:"10s"`
	// LoadInterval is the least time between two changes of an instance's
	// load band (from instance.stats reports).
	LoadInterval time.Duration `env:"ORCHESTRY_LOAD_BAND_INTERVAL" envDefault:"30s"`
	// AutoHighRate is the request rate of an app (per second, all
	// instances) from which lb_method auto chooses least_conn.
	AutoHighRate float64 `env:"ORCHESTRY_AUTO_HIGH_RATE" envDefault:"100"`
	// AutoWindows is how many traffic windows in a row must agree on a new
	// auto choice.
	AutoWindows int `env:"ORCHESTRY_AUTO_WINDOWS" envDefault:"3"`
	// AutoInterval is the least time between two changes of an app's auto
	// choice.
	AutoInterval time.Duration `env:"ORCHESTRY_AUTO_INTERVAL" envDefault:"60s"`
	// NatsReplicas is how many NATS servers hold each stream and bucket
	// this service provisions (3 on a three-node JetStream cluster).
	NatsReplicas int `env:"ORCHESTRY_NATS_REPLICAS" envDefault:"1"`
}

// Service is one routing replica.
type Service struct {
	nc   *nats.Conn
	cfg  Config
	log  zerolog.Logger
	prom *promMetrics
}

// New checks cfg and returns a service using the connection nc.
func New(nc *nats.Conn, cfg Config, log zerolog.Logger) (*Service, error) {
	if nc == nil {
		return nil, errors.New("routing: nil NATS connection")
	}
	if cfg.APIToken == "" {
		return nil, errors.New("routing: API token is empty (set ORCHESTRY_API_TOKEN)")
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = api.DefaultMaxBody
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 10 * time.Second
	}
	if cfg.AutoHighRate <= 0 {
		cfg.AutoHighRate = 100
	}
	if cfg.AutoWindows <= 0 {
		cfg.AutoWindows = 3
	}
	return &Service{nc: nc, cfg: cfg, log: log.With().Str("service", "routing").Logger(), prom: newPromMetrics()}, nil
}

// Run provisions streams and buckets, then serves the API on ln and runs
// the outbox, the instances consumer and the status consumer until ctx is
// cancelled; it then shuts down gracefully and returns nil. It returns an
// error when a part cannot start or fails on its own.
func (s *Service) Run(ctx context.Context, ln net.Listener) error {
	defer ln.Close()
	js, err := jetstream.New(s.nc)
	if err != nil {
		return fmt.Errorf("routing: jetstream: %w", err)
	}
	if err := events.ProvisionFor(ctx, js, s.cfg.NatsReplicas, events.ServiceRouting); err != nil {
		if ctx.Err() != nil {
			return nil // cancelled while starting
		}
		return fmt.Errorf("routing: %w", err)
	}
	st, err := store.Open(ctx, js)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("routing: %w", err)
	}
	tracker := &status.Tracker{}
	healthView := &healthview.View{}
	trafficView := &trafficview.View{}
	certView := &certview.View{}
	eventFeed := feed.New(feed.Options{})
	apiHandler := api.New(st, tracker, api.Options{Token: s.cfg.APIToken, MaxBody: s.cfg.MaxBodyBytes, Health: healthView,
		Traffic: trafficView, Certs: certView, Events: eventFeed, NodeConfig: nodeconfig.Client{NC: s.nc}}, s.log)
	srv := &http.Server{
		Handler:           s.prom.instrument(console.Mount(apiHandler)),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	// Event streams never end on their own: end them when shutdown starts.
	srv.RegisterOnShutdown(eventFeed.Close)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Followed before the API takes writes, so every revision is published.
	out, err := outbox.Start(ctx, js, s.log)
	if err != nil {
		return fmt.Errorf("routing: %w", err)
	}
	defer out.Stop()
	var (
		wg      sync.WaitGroup
		once    sync.Once
		failure error
	)
	fail := func(part string, err error) {
		if err != nil && ctx.Err() == nil {
			once.Do(func() { failure = fmt.Errorf("routing: %s: %w", part, err) })
			cancel()
		}
	}
	parts := map[string]func(context.Context) error{
		"intake": intake.New(js, st, s.log).Run,
		"load":   load.New(js, st, s.cfg.LoadInterval, s.log).Run,
		"auto": auto.New(js, st, auto.Thresholds{HighRate: s.cfg.AutoHighRate, Windows: s.cfg.AutoWindows,
			Interval: s.cfg.AutoInterval}, s.log).Run,
		"status":  func(ctx context.Context) error { return tracker.Run(ctx, js, s.log) },
		"health":  func(ctx context.Context) error { return healthView.Run(ctx, js, s.log) },
		"traffic": func(ctx context.Context) error { return trafficView.Run(ctx, js, s.log) },
		"certs":   func(ctx context.Context) error { return certView.Run(ctx, js, s.log) },
		"feed":    func(ctx context.Context) error { return eventFeed.Run(ctx, js, s.log) },
	}
	for name, run := range parts {
		wg.Go(func() { fail(name, run(ctx)) })
	}
	wg.Go(func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			fail("api", err)
		}
	})
	s.log.Info().Str("addr", ln.Addr().String()).Msg("routing started")

	<-ctx.Done()
	shutCtx, done := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer done()
	if err := srv.Shutdown(shutCtx); err != nil {
		s.log.Warn().Err(err).Msg("api shutdown")
		_ = srv.Close()
	}
	wg.Wait()
	if failure != nil {
		return failure
	}
	s.log.Info().Msg("routing stopped")
	return nil
}
