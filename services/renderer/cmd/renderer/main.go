// Command renderer runs the renderer service for one NGINX node on its own,
// against an external NATS server.
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
	"github.com/orchestry/orchestry/services/renderer"
)

type config struct {
	NATS events.NATSClient
	// MetricsAddr serves this service's own Prometheus /metrics; keep it
	// on loopback or an internal network. Empty serves nothing.
	MetricsAddr string `env:"ORCHESTRY_RENDERER_METRICS_ADDR" envDefault:"127.0.0.1:9467"`
	Renderer    renderer.Config
}

func main() {
	log := zerolog.New(os.Stderr).With().Timestamp().Logger()
	var cfg config
	if err := env.Parse(&cfg); err != nil {
		log.Fatal().Err(err).Msg("config")
	}
	nc, err := cfg.NATS.Connect("renderer/"+cfg.Renderer.Node, events.ReportConnection(func(event, server string, err error) {
		log.Warn().Err(err).Str("server", server).Msg("nats " + event)
	}))
	if err != nil {
		log.Fatal().Err(err).Msg("nats connect")
	}
	defer nc.Close()
	svc, err := renderer.New(nc, cfg.Renderer, log)
	if err != nil {
		log.Fatal().Err(err).Msg("renderer")
	}
	if cfg.MetricsAddr != "" { // the service's own /metrics
		m := &http.Server{Addr: cfg.MetricsAddr, Handler: promhttp.HandlerFor(svc.Registry(), promhttp.HandlerOpts{}), ReadHeaderTimeout: 5 * time.Second}
		go func() { log.Error().Err(m.ListenAndServe()).Msg("serve /metrics") }()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := svc.Run(ctx); err != nil {
		log.Fatal().Err(err).Msg("renderer")
	}
}
