// Command routing runs the routing service on its own, against an external
// NATS server: REST API, instance intake, routing.changed outbox and status.
package main

import (
	"context"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/caarlos0/env/v11"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/orchestry/orchestry/services/routing"
)

type config struct {
	NatsURL string `env:"ORCHESTRY_NATS_URL" envDefault:"nats://127.0.0.1:4222"`
	// NatsToken is sent to NATS when set (the all-in-one's embedded
	// server requires the token in its data directory).
	NatsToken string `env:"ORCHESTRY_NATS_TOKEN"`
	Routing   routing.Config
}

func main() {
	log := zerolog.New(os.Stderr).With().Timestamp().Logger()
	var cfg config
	if err := env.Parse(&cfg); err != nil {
		log.Fatal().Err(err).Msg("config")
	}
	nc, err := nats.Connect(cfg.NatsURL, nats.Name("routing"), nats.MaxReconnects(-1), nats.Token(cfg.NatsToken))
	if err != nil {
		log.Fatal().Err(err).Msg("nats connect")
	}
	defer nc.Close()
	svc, err := routing.New(nc, cfg.Routing, log)
	if err != nil {
		log.Fatal().Err(err).Msg("routing")
	}
	ln, err := net.Listen("tcp", cfg.Routing.APIAddr)
	if err != nil {
		log.Fatal().Err(err).Str("addr", cfg.Routing.APIAddr).Msg("listen")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := svc.Run(ctx, ln); err != nil {
		log.Error().Err(err).Msg("routing")
		stop()
		nc.Close()
		os.Exit(1)
	}
}
