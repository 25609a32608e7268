// Command health runs the health service (active probes, instance.health
// transitions) on its own, against an external NATS server. Run several for
// more capacity and availability: they share the targets.
package main

import (
	"context"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/orchestry/orchestry/pkg/events"
	"github.com/orchestry/orchestry/services/health"
)

type config struct {
	NATS events.NATSClient
	// MetricsAddr serves this service's own Prometheus /metrics; keep it
	// on loopback or an internal network. Empty serves nothing.
	MetricsAddr string `env:"ORCHESTRY_HEALTH_METRICS_ADDR" envDefault:"127.0.0.1:9466"`
	Health      health.Config
}

func main() {
	log := zerolog.New(os.Stderr).With().Timestamp().Logger()
	var cfg config
	if err := env.Parse(&cfg); err != nil {
		log.Fatal().Err(err).Msg("config")
	}
	nc, err := cfg.NATS.Connect("health", events.ReportConnection(func(event, server string, err error) {
		log.Warn().Err(err).Str("server", server).Msg("nats " + event)
	}))
	if err != nil {
		log.Fatal().Err(err).Msg("nats connect")
	}
	defer nc.Close()
	svc, err := health.New(nc, cfg.Health, log)
	if err != nil {
		log.Fatal().Err(err).Msg("health")
	}
	if cfg.MetricsAddr != "" { // the service's own /metrics
		m := &http.Server{Addr: cfg.MetricsAddr, Handler: promhttp.HandlerFor(svc.Registry(), promhttp.HandlerOpts{}), ReadHeaderTimeout: 5 * time.Second}
		go func() { log.Error().Err(m.ListenAndServe()).Msg("serve /metrics") }()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := svc.Run(ctx); err != nil {
		log.Fatal().Err(err).Msg("health")
	}
}
