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
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/orchestry/orchestry/services/metrics"
)

type config struct {
	NatsURL   string `env:"ORCHESTRY_NATS_URL" envDefault:"nats://127.0.0.1:4222"`
	NatsToken string `env:"ORCHESTRY_NATS_TOKEN"`
	// NatsUser and NatsPassword log in as this service's own NATS user
	// (events.PermissionsOf); when NatsUser is set the token is not sent.
	NatsUser     string `env:"ORCHESTRY_NATS_USER"`
	NatsPassword string `env:"ORCHESTRY_NATS_PASSWORD"`
	LogLevel     string `env:"ORCHESTRY_LOG_LEVEL" envDefault:"info"`
	Metrics      metrics.Config
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
	opts := []nats.Option{nats.Name("metrics"), nats.MaxReconnects(-1), nats.RetryOnFailedConnect(true)}
	if cfg.NatsUser != "" {
		opts = append(opts, nats.UserInfo(cfg.NatsUser, cfg.NatsPassword))
	} else if cfg.NatsToken != "" {
		opts = append(opts, nats.Token(cfg.NatsToken))
	}
	nc, err := nats.Connect(cfg.NatsURL, opts...)
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
