// Command routing runs the routing service on its own, against an external
// NATS server: REST API, instance intake, routing.changed outbox and status.
package main

import (
	"context"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/orchestry/orchestry/pkg/events"
	"github.com/orchestry/orchestry/services/routing"
)

type config struct {
	NATS events.NATSClient
	// MetricsAddr serves this service's own Prometheus /metrics; keep it
	// on loopback or an internal network. Empty serves nothing.
	MetricsAddr string `env:"ORCHESTRY_ROUTING_METRICS_ADDR" envDefault:"127.0.0.1:9465"`
	Routing     routing.Config
}

func main() {
	log := zerolog.New(os.Stderr).With().Timestamp().Logger()
	var cfg config
	if err := env.Parse(&cfg); err != nil {
		log.Fatal().Err(err).Msg("config")
	}
	nc, err := cfg.NATS.Connect("routing", events.ReportConnection(func(event, server string, err error) {
		log.Warn().Err(err).Str("server", server).Msg("nats " + event)
	}))
	if err != nil {
		log.Fatal().Err(err).Msg("nats connect")
	}
	defer nc.Close()
	svc, err := routing.New(nc, cfg.Routing, log)
	if err != nil {
		log.Fatal().Err(err).Msg("routing")
	}
	if cfg.MetricsAddr != "" { // the service's own /metrics
		m := &http.Server{Addr: cfg.MetricsAddr, Handler: promhttp.HandlerFor(svc.Registry(), promhttp.HandlerOpts{}), ReadHeaderTimeout: 5 * time.Second}
		go func() { log.Error().Err(m.ListenAndServe()).Msg("serve /metrics") }()
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
