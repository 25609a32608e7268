// Command metrics runs the metrics service on its own, against an external
// NATS server: it receives NGINX's access log over syslog (UDP) and
// publishes metrics.upstream.<app> once per window.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/caarlos0/env/v11"
	"github.com/rs/zerolog"

	"github.com/orchestry/orchestry/pkg/events"
	"github.com/orchestry/orchestry/services/metrics"
)

type config struct {
	NATS     events.NATSClient
	LogLevel string `env:"ORCHESTRY_LOG_LEVEL" envDefault:"info"`
	Metrics  metrics.Config
}

func main() {
	log := zerolog.New(os.Stderr).With().Timestamp().Logger()
	var cfg config
	if err := env.Parse(&cfg); err != nil {
		log.Fatal().Err(err).Msg("config")
	}
	level, err := zerolog.ParseLevel(cfg.LogLevel)
	if err != nil {
		log.Fatal().Err(err).Msg("ORCHESTRY_LOG_LEVEL")
	}
	log = log.Level(level)
	nc, err := cfg.NATS.Connect("metrics", events.ReportConnection(func(event, server string, err error) {
		log.Warn().Err(err).Str("server", server).Msg("nats " + event)
	}))
	if err != nil {
		log.Fatal().Err(err).Msg("nats connect")
	}
	defer nc.Close()
	svc, err := metrics.New(nc, cfg.Metrics, log)
	if err != nil {
		log.Fatal().Err(err).Msg("metrics")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := svc.Run(ctx); err != nil {
		log.Fatal().Err(err).Msg("metrics")
	}
}
