// Command orchestry is the all-in-one Orchestry: every service in one
// process, on an embedded NATS server with JetStream (or an external one),
// with a managed NGINX.
//
//	orchestry up           run everything until interrupted
//	orchestry up -demo     also start three demo backends and register them
//	orchestry nats-config  write the NATS cluster config with one user per service
//	orchestry demo         one demo backend that registers itself (compose stack)
//
// and the command line of a running Orchestry (package cli): apply, get,
// describe, delete, instances, events, config, status, version.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/orchestry/orchestry/cmd/orchestry/cli"
	"github.com/orchestry/orchestry/cmd/orchestry/demo"
	"github.com/orchestry/orchestry/cmd/orchestry/natsd"
	"github.com/orchestry/orchestry/cmd/orchestry/token"
	"github.com/orchestry/orchestry/pkg/events"
	"github.com/orchestry/orchestry/services/certs"
	"github.com/orchestry/orchestry/services/health"
	"github.com/orchestry/orchestry/services/metrics"
	"github.com/orchestry/orchestry/services/renderer"
	"github.com/orchestry/orchestry/services/routing"
)

// config is the all-in-one's environment; each service reads its own part.
type config struct {
	DataDir string `env:"ORCHESTRY_DATA_DIR" envDefault:".data"`
	// NatsURL of an external NATS server; empty runs one embedded.
	NatsURL string `env:"ORCHESTRY_NATS_URL"`
	// NatsToken authenticates to NATS. With the embedded server it is the
	// token every client must present; when unset one is generated into
	// the data directory (mode 0600).
	NatsToken string `env:"ORCHESTRY_NATS_TOKEN"`
	// NatsListen is where the embedded NATS server listens for other
	// systems (orchestrators, autoscalers) that publish events.
	NatsListen string `env:"ORCHESTRY_NATS_LISTEN" envDefault:"127.0.0.1:4222"`
	LogLevel   string `env:"ORCHESTRY_LOG_LEVEL" envDefault:"info"`
	DemoPort   int    `env:"ORCHESTRY_DEMO_PORT" envDefault:"8080"`
	Routing    routing.Config
	Health     health.Config
	Metrics    metrics.Config
	Renderer   renderer.Config
	Certs      certs.Config
}

func main() {
	os.Exit(cli.Main(os.Args[1:], cli.Options{Commands: []*cobra.Command{
		cli.Passthrough("up [-demo]", "Run every service, NATS and NGINX in this process until interrupted",
			"up runs the all-in-one: routing, health, metrics, certs and the renderer with its NGINX, on an\nembedded NATS server with JetStream (or ORCHESTRY_NATS_URL). -demo also starts three demo\nbackends and registers them as the app \"demo\". Its flags are Go flags: orchestry up -h.",
			upMain),
		cli.Passthrough("nats-config [flags]", "Write the NATS cluster config with one user per service",
			"nats-config writes the nats-server configuration of a JetStream cluster with one user per\nidentity; see orchestry nats-config -h for its flags.",
			natsConfigMain),
		cli.Passthrough("demo [flags]", "Run one demo backend that registers itself (compose stack)",
			"demo runs one demo backend that registers itself through the REST API as an instance of\nthe app \"demo\"; see orchestry demo -h for its flags.",
			demoMain),
	}}))
}

// upMain is `orchestry up [-demo]`.
func upMain(args []string) int {
	fs := flag.NewFlagSet("up", flag.ExitOnError)
	withDemo := fs.Bool("demo", false, "start three demo backends and register them as the app \"demo\"")
	_ = fs.Parse(args)

	log := zerolog.New(os.Stderr).With().Timestamp().Logger()
	var cfg config
	if err := env.Parse(&cfg); err != nil {
		log.Error().Err(err).Msg("config")
		return 1
	}
	if lvl, err := zerolog.ParseLevel(cfg.LogLevel); err == nil {
		log = log.Level(lvl)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := up(ctx, cfg, *withDemo, log); err != nil {
		log.Error().Err(err).Msg("orchestry up")
		return 1
	}
	return 0
}

// up wires the services together and runs them until ctx ends.
func up(ctx context.Context, cfg config, withDemo bool, log zerolog.Logger) error {
	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return err
	}
	// 0711: NGINX workers (run as an unprivileged user when started by
	// root) may traverse to their temp directories, but nobody may list the
	// data directory; secrets in it are files of mode 0600.
	if err := os.MkdirAll(dataDir, 0o711); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	if err := os.Chmod(dataDir, 0o711); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	cfg.Renderer.DataDir, cfg.Certs.DataDir = dataDir, dataDir

	// Each service connects as its own NATS identity (events.PermissionsOf)
	// to the embedded server; other systems connect as "client" with the
	// NATS token as its password. With an external server every service
	// uses the token, if one is set.
	connect := func(service string) (*nats.Conn, error) {
		opts := append(events.ClientOptions(service), events.ReportConnection(func(event, server string, err error) {
			log.Warn().Err(err).Str("service", service).Str("server", server).Msg("nats " + event)
		}))
		if cfg.NatsToken != "" {
			opts = append(opts, nats.Token(cfg.NatsToken))
		}
		return nats.Connect(cfg.NatsURL, opts...)
	}
	if cfg.NatsURL == "" {
		if cfg.NatsToken == "" {
			if cfg.NatsToken, _, err = token.LoadOrCreate(filepath.Join(dataDir, "nats-token")); err != nil {
				return err
			}
		}
		passwords := map[string]string{events.ServiceClient: cfg.NatsToken}
		for _, name := range events.Services() {
			if name != events.ServiceClient {
				if passwords[name], err = token.New(); err != nil {
					return err
				}
			}
		}
		ns, err := natsd.Start(cfg.NatsListen, filepath.Join(dataDir, "nats"), passwords)
		if err != nil {
			return err
		}
		defer ns.Shutdown()
		connect = func(service string) (*nats.Conn, error) {
			return nats.Connect(ns.ClientURL(), nats.Name(service), nats.MaxReconnects(-1), nats.InProcessServer(ns),
				nats.UserInfo(service, passwords[service]))
		}
		log.Info().Str("url", ns.ClientURL()).Str("user", events.ServiceClient).Str("password_file", filepath.Join(dataDir, "nats-token")).
			Msg("embedded NATS with JetStream started")
	}
	conns := map[string]*nats.Conn{}
	for _, name := range events.Services() {
		if name == events.ServiceClient {
			continue
		}
		nc, err := connect(name)
		if err != nil {
			return fmt.Errorf("nats connect as %s: %w", name, err)
		}
		defer nc.Close()
		conns[name] = nc
	}

	generated := false
	if cfg.Routing.APIToken == "" {
		cfg.Routing.APIToken, generated, err = token.LoadOrCreate(filepath.Join(dataDir, "api-token"))
		if err != nil {
			return err
		}
	}
	rt, err := routing.New(conns[events.ServiceRouting], cfg.Routing, log)
	if err != nil {
		return err
	}
	hs, err := health.New(conns[events.ServiceHealth], cfg.Health, log)
	if err != nil {
		return err
	}
	ms, err := metrics.New(conns[events.ServiceMetrics], cfg.Metrics, log)
	if err != nil {
		return err
	}
	// NGINX logs every request to the metrics service unless told otherwise.
	if cfg.Renderer.Syslog == "" {
		cfg.Renderer.Syslog = cfg.Metrics.SyslogAddr
	}
	cs, err := certs.New(conns[events.ServiceCerts], cfg.Certs, log)
	if err != nil {
		return err
	}
	// With ACME, NGINX answers HTTP-01 challenges through the certs
	// service (the selfsigned provider needs none, and the HTTP port 80 of
	// the challenge servers may not be open to an unprivileged user).
	if cfg.Renderer.ACMEChallenge == "" && cfg.Certs.Provider == events.ProviderACME {
		cfg.Renderer.ACMEChallenge = cfg.Certs.HTTP01Addr
	}
	rd, err := renderer.New(conns[events.ServiceRenderer], cfg.Renderer, log)
	if err != nil {
		return err
	}
	// One /metrics (the metrics service's) shows every service's own
	// metrics too.
	ms.Include(rt.Registry(), hs.Registry(), rd.Registry(), cs.Registry())
	ln, err := net.Listen("tcp", cfg.Routing.APIAddr)
	if err != nil {
		return fmt.Errorf("api listen: %w", err)
	}
	apiURL := "http://" + ln.Addr().String()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	services := map[string]func() error{
		"routing":  func() error { return rt.Run(ctx, ln) },
		"health":   func() error { return hs.Run(ctx) },
		"metrics":  func() error { return ms.Run(ctx) },
		"renderer": func() error { return rd.Run(ctx) },
		"certs":    func() error { return cs.Run(ctx) },
	}
	errs := make(chan error, len(services))
	for name, run := range services {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := run(); err != nil {
				errs <- fmt.Errorf("%s: %w", name, err)
				cancel()
			}
		}()
	}
	log.Info().Str("api", apiURL).Str("token_file", filepath.Join(dataDir, "api-token")).Bool("token_generated", generated).Msg("orchestry up")

	if withDemo {
		bs, err := demo.StartBackends(3)
		if err != nil {
			cancel()
		} else {
			defer demo.StopBackends(bs)
			if err := registerDemo(ctx, apiURL, cfg.Routing.APIToken, cfg.DemoPort, bs); err != nil {
				log.Error().Err(err).Msg("demo registration")
			} else {
				fmt.Fprintf(os.Stderr, "\n  Orchestry is up. Try:\n\n    curl http://127.0.0.1:%d/\n\n  API %s  token %s\n    curl -H 'Authorization: Bearer %s' %s/v1/apps\n    bin/orchestry get instances demo\n\n  Console %s/ui/#token=%s\n\n  Ctrl-C stops everything.\n\n",
					cfg.DemoPort, apiURL, cfg.Routing.APIToken, cfg.Routing.APIToken, apiURL, apiURL, cfg.Routing.APIToken)
			}
		}
	}
	wg.Wait()
	close(errs)
	return errors.Join(collect(errs)...)
}

// registerDemo retries until the API answers, then registers the demo.
func registerDemo(ctx context.Context, apiURL, tok string, port int, bs []*demo.Backend) error {
	var err error
	for range 50 {
		if err = demo.Register(ctx, apiURL, tok, port, bs); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return err
}

func collect(errs <-chan error) []error {
	var out []error
	for err := range errs {
		out = append(out, err)
	}
	return out
}
