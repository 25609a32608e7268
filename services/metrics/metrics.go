// Package metrics turns NGINX's access log into traffic figures per app and
// per upstream address, published as metrics.upstream.<app> once per window.
//
// NGINX sends every request as one syslog datagram over UDP (the renderer
// configures log_format orchestry_json and access_log syslog:...). The
// service reads them (package syslog), parses each strictly (package
// accesslog), counts it in the current window (package window) if its app is
// known from routing.changed, and publishes the window's figures when it
// ends. Every datagram it cannot use is dropped and counted by reason
// (Counters); nothing a sender does makes it allocate without bound.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/orchestry/orchestry/pkg/events"
	"github.com/orchestry/orchestry/services/metrics/export"
	"github.com/orchestry/orchestry/services/metrics/syslog"
	"github.com/orchestry/orchestry/services/metrics/window"
)

// Config is the metrics service's configuration, read from the environment.
type Config struct {
	// SyslogAddr is the UDP address NGINX sends its access log to.
	SyslogAddr string `env:"ORCHESTRY_METRICS_SYSLOG_ADDR" envDefault:"127.0.0.1:5514"`
	// Window is how long each window lasts; windows end on multiples of
	// it (wall clock), so figures of several nodes line up.
	Window time.Duration `env:"ORCHESTRY_METRICS_WINDOW" envDefault:"10s"`
	// MaxInstances bounds the addresses listed per app per window; the
	// attempts to further addresses are folded (counted, not listed).
	MaxInstances int `env:"ORCHESTRY_METRICS_MAX_INSTANCES" envDefault:"100"`
	// HTTPAddr serves Prometheus /metrics; keep it on loopback or an
	// internal network. Empty serves nothing.
	HTTPAddr string `env:"ORCHESTRY_METRICS_HTTP_ADDR" envDefault:"127.0.0.1:9464"`
	// NatsReplicas is how many NATS servers hold each stream and bucket
	// this service provisions (3 on a three-node JetStream cluster).
	NatsReplicas int `env:"ORCHESTRY_NATS_REPLICAS" envDefault:"1"`
}

// Source is the CloudEvents source of the events the service publishes.
const Source = "metrics"

// publishTimeout bounds publishing one window's events.
const publishTimeout = 5 * time.Second

// Service is the metrics service.
type Service struct {
	cfg      Config
	js       jetstream.JetStream
	log      zerolog.Logger
	agg      *window.Aggregator
	counters Counters
	gate     events.Gate
	addr     atomic.Pointer[net.UDPAddr]
	httpAddr atomic.Pointer[net.TCPAddr]
	export   *export.Exporter
	versions *servingVersions
	started  time.Time // events published before it are replays
	extra    prometheus.Gatherers
}

// New checks the configuration and prepares the service.
func New(nc *nats.Conn, cfg Config, log zerolog.Logger) (*Service, error) {
	if cfg.SyslogAddr == "" {
		return nil, errors.New("metrics: ORCHESTRY_METRICS_SYSLOG_ADDR must not be empty")
	}
	if _, _, err := net.SplitHostPort(cfg.SyslogAddr); err != nil {
		return nil, fmt.Errorf("metrics: ORCHESTRY_METRICS_SYSLOG_ADDR %q: %w", cfg.SyslogAddr, err)
	}
	if cfg.Window < 100*time.Millisecond || cfg.Window > time.Hour {
		return nil, fmt.Errorf("metrics: ORCHESTRY_METRICS_WINDOW must be between 100ms and 1h, not %s", cfg.Window)
	}
	if cfg.MaxInstances < 1 || cfg.MaxInstances > 100000 {
		return nil, fmt.Errorf("metrics: ORCHESTRY_METRICS_MAX_INSTANCES must be between 1 and 100000, not %d", cfg.MaxInstances)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("metrics: jetstream: %w", err)
	}
	s := &Service{
		cfg:     cfg,
		js:      js,
		log:     log.With().Str("service", "metrics").Logger(),
		agg:     window.New(cfg.MaxInstances, time.Now()),
		started: time.Now(),
	}
	s.export = export.New(s.lineResults)
	s.versions = newServingVersions()
	s.export.Registry().MustRegister(s.versions)
	return s, nil
}

// lineResults is the Prometheus view of the counters: lines counted, and
// lines dropped by reason.
func (s *Service) lineResults() map[string]int64 {
	out := s.counters.Snapshot()
	out["counted"] = out["lines"]
	delete(out, "lines")
	delete(out, "folded") // attempts, not lines
	delete(out, "unattributed")
	return out
}

// Include serves the metrics of g on this service's /metrics too (the
// all-in-one shows every service's own metrics there). Call it before Run.
func (s *Service) Include(g ...prometheus.Gatherer) { s.extra = append(s.extra, g...) }

// HTTPAddr is where /metrics is served (nil before Run serves it).
func (s *Service) HTTPAddr() *net.TCPAddr { return s.httpAddr.Load() }

// serveHTTP serves /metrics on HTTPAddr until the returned stop is called.
func (s *Service) serveHTTP() (stop func(), err error) {
	ln, err := net.Listen("tcp", s.cfg.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("ORCHESTRY_METRICS_HTTP_ADDR: %w", err)
	}
	if ta, ok := ln.Addr().(*net.TCPAddr); ok {
		s.httpAddr.Store(ta)
	}
	mux := http.NewServeMux()
	g := append(prometheus.Gatherers{s.export.Registry()}, s.extra...)
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error().Err(err).Msg("serve /metrics")
		}
	}()
	s.log.Info().Str("addr", ln.Addr().String()).Msg("serving /metrics")
	return func() { _ = srv.Close() }, nil
}

// Counters returns the service's counters of lines and drops by reason.
func (s *Service) Counters() *Counters { return &s.counters }

// Addr is the UDP address the service listens on, nil before Run has bound
// it.
func (s *Service) Addr() *net.UDPAddr { return s.addr.Load() }

// Run provisions the streams, follows routing.changed for the known apps,
// listens for NGINX's syslog datagrams and publishes each window's figures,
// until ctx ends. It then publishes the last, partial window and returns
// nil.
func (s *Service) Run(ctx context.Context) error {
	if err := events.ProvisionFor(ctx, s.js, s.cfg.NatsReplicas, events.ServiceMetrics); err != nil {
		return quiet(ctx, fmt.Errorf("metrics: %w", err))
	}
	stopFollow, err := s.followAll(ctx)
	if err != nil {
		return quiet(ctx, err)
	}
	defer stopFollow()
	l, err := syslog.Listen(s.cfg.SyslogAddr)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	if ua, ok := l.Addr().(*net.UDPAddr); ok {
		s.addr.Store(ua)
	}
	s.log.Info().Str("syslog_addr", l.Addr().String()).Dur("window", s.cfg.Window).
		Int("max_instances", s.cfg.MaxInstances).Msg("metrics started")

	if s.cfg.HTTPAddr != "" {
		stop, err := s.serveHTTP()
		if err != nil {
			return fmt.Errorf("metrics: %w", err)
		}
		defer stop()
	}

	var wg sync.WaitGroup
	var serveErr error
	lctx, stopListen := context.WithCancel(ctx)
	defer stopListen()
	wg.Go(func() {
		in := newIngest(s.agg, &s.counters, s.versions, s.log)
		serveErr = l.Serve(lctx, in.handle)
		stopListen() // a failed listener stops the service
	})
	s.flushLoop(lctx)
	stopListen()
	wg.Wait()

	// The last, partial window.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), publishTimeout)
	defer cancel()
	s.flush(fctx, time.Now())
	s.log.Info().Msg("metrics stopped")
	if serveErr != nil {
		return fmt.Errorf("metrics: %w", serveErr)
	}
	return nil
}

// flushLoop ends a window at every multiple of the window length until ctx
// ends.
func (s *Service) flushLoop(ctx context.Context) {
	w := s.cfg.Window
	t := time.NewTimer(time.Until(time.Now().Truncate(w).Add(w)))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			pctx, cancel := context.WithTimeout(ctx, publishTimeout)
			s.flush(pctx, now)
			cancel()
			t.Reset(time.Until(time.Now().Truncate(w).Add(w)))
		}
	}
}

// flush ends the current window at now and publishes its figures.
func (s *Service) flush(ctx context.Context, now time.Time) {
	all := s.agg.FlushAll(now)
	s.export.Observe(all)
	published := 0
	for _, w := range all {
		m := w.Metrics
		if _, err := events.Publish(ctx, s.js, Source, events.MetricsUpstream(m.App), m); err != nil {
			s.log.Error().Err(err).Str("app", m.App).Msg("publish metrics")
			continue
		}
		published++
	}
	c := &s.counters
	s.log.Debug().Int("apps", published).Int64("lines", c.Lines.Load()).Int64("dropped", c.Dropped()).
		Int64("folded", c.Folded.Load()).Msg("window published")
}

// quiet turns an error caused by ctx ending into nil.
func quiet(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}
