// Command certs runs the certs service (certificate issuance and renewal,
// HTTP-01 answers) on its own, against an external NATS server. Run two
// or more for availability: one issues at a time (the issuer lease), every
// one answers HTTP-01 challenges.
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
	"github.com/orchestry/orchestry/services/certs"
)

type config struct {
	NATS events.NATSClient
	// MetricsAddr serves this service's own Prometheus /metrics; keep it
	// on loopback or an internal network. Empty serves nothing.
	MetricsAddr string `env:"ORCHESTRY_CERTS_METRICS_ADDR" envDefault:"127.0.0.1:9468"`
	Certs       certs.Config
}

func main() {
	log := zerolog.New(os.Stderr).With().Timestamp().Logger()
	var cfg config
	if err := env.Parse(&cfg); err != nil {
		log.Fatal().Err(err).Msg("config")
	}
	nc, err := cfg.NATS.Connect("certs", events.ReportConnection(func(event, server string, err error) {
		log.Warn().Err(err).Str("server", server).Msg("nats " + event)
	}))
	if err != nil {
		log.Fatal().Err(err).Msg("nats connect")
	}
	defer nc.Close()
	svc, err := certs.New(nc, cfg.Certs, log)
	if err != nil {
		log.Fatal().Err(err).Msg("certs")
	}
	if cfg.MetricsAddr != "" { // the service's own /metrics
		m := &http.Server{Addr: cfg.MetricsAddr, Handler: promhttp.HandlerFor(svc.Registry(), promhttp.HandlerOpts{}), ReadHeaderTimeout: 5 * time.Second}
		go func() { log.Error().Err(m.ListenAndServe()).Msg("serve /metrics") }()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := svc.Run(ctx); err != nil {
		log.Fatal().Err(err).Msg("certs")
	}
}
