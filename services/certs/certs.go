// Package certs issues and renews the certificates of apps with TLS
// enabled. It follows routing.changed for the wanted domains (apps with
// spec.networking.ssl.enabled and a domain) and, while this replica holds
// the issuer lease (package lease), obtains a certificate for each from a
// provider (package selfsigned: a local CA; package acme: an ACME CA over
// HTTP-01), stores it in the certs KV bucket (package bundle) and
// publishes cert.issued.<domain> with its summary. It renews inside the
// CA's ACME Renewal Information window or when a third of the lifetime
// remains, backs off after a failure (cert.failed.<domain> names the next
// attempt) within a per-domain failure budget (package schedule), and on
// every replica answers HTTP-01 challenges from the acme-challenges bucket
// (package challenge). Private keys never appear in an event, a log line
// or an error.
package certs

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/orchestry/orchestry/pkg/events"
	"github.com/orchestry/orchestry/services/certs/bundle"
	"github.com/orchestry/orchestry/services/certs/challenge"
	"github.com/orchestry/orchestry/services/certs/issue"
	"github.com/orchestry/orchestry/services/certs/issue/acme"
	"github.com/orchestry/orchestry/services/certs/issue/selfsigned"
	"github.com/orchestry/orchestry/services/certs/lease"
	"github.com/orchestry/orchestry/services/certs/schedule"
)

// Config is the certs service's configuration, read from the environment.
type Config struct {
	// Provider issues the certificates: "selfsigned" (a local CA, for
	// development) or "acme".
	Provider string `env:"ORCHESTRY_CERTS_PROVIDER" envDefault:"selfsigned"`
	// Replica names this replica in the issuer lease and in the source of
	// its events; empty means <hostname>-<pid>.
	Replica string `env:"ORCHESTRY_CERTS_REPLICA"`
	// DataDir is Orchestry's state directory; the CA file goes under it
	// by default.
	DataDir string `env:"ORCHESTRY_DATA_DIR" envDefault:".data"`
	// CAFile receives the local CA's certificate (never its key), for
	// users to trust; empty means $ORCHESTRY_DATA_DIR/certs/ca.crt.
	CAFile string `env:"ORCHESTRY_CERTS_CA_FILE"`
	// HTTP01Addr is where every replica answers
	// GET /.well-known/acme-challenge/{token}; NGINX proxies port 80's
	// challenge path there. Empty turns the server off.
	HTTP01Addr string `env:"ORCHESTRY_CERTS_HTTP01_ADDR" envDefault:"127.0.0.1:8402"`
	// SelfSignedSuffixes are domain suffixes no public CA issues for:
	// their certificates come from the local CA even with the acme
	// provider.
	SelfSignedSuffixes []string `env:"ORCHESTRY_CERTS_SELFSIGNED_SUFFIXES" envDefault:"localhost,local,internal,test,invalid" envSeparator:","`

	// ACMEDirectory is the ACME CA's directory URL (Let's Encrypt
	// production by default).
	ACMEDirectory string `env:"ORCHESTRY_ACME_DIRECTORY" envDefault:"https://acme-v02.api.letsencrypt.org/directory"`
	// ACMEEmail is the ACME account's contact address; may be empty.
	ACMEEmail string `env:"ORCHESTRY_ACME_EMAIL"`
	// ACMEEABKid is the External Account Binding key id, with ACMEEABHMAC.
	ACMEEABKid string `env:"ORCHESTRY_ACME_EAB_KID"`
	// ACMEEABHMAC is the External Account Binding HMAC key (base64url).
	ACMEEABHMAC string `env:"ORCHESTRY_ACME_EAB_HMAC"`
	// ACMECABundle is a PEM file of extra roots trusted for the
	// directory's TLS (a test CA such as Pebble's); empty for none.
	ACMECABundle string `env:"ORCHESTRY_ACME_CA_BUNDLE"`
	// ACMEProfile is the CA's certificate profile to order (ACME profiles,
	// e.g. Let's Encrypt's "shortlived"); empty for the CA's default.
	ACMEProfile string `env:"ORCHESTRY_ACME_PROFILE"`
	// ACMETimeout bounds each request to the ACME CA.
	ACMETimeout time.Duration `env:"ORCHESTRY_ACME_TIMEOUT" envDefault:"30s"`

	// AttemptTimeout bounds one issuance, from order to stored bundle.
	AttemptTimeout time.Duration `env:"ORCHESTRY_CERTS_ATTEMPT_TIMEOUT" envDefault:"3m"`
	// RetryBase is the wait after a domain's first failure; it doubles
	// with each further one, with jitter.
	RetryBase time.Duration `env:"ORCHESTRY_CERTS_RETRY_BASE" envDefault:"1m"`
	// RetryMax caps the wait between two attempts.
	RetryMax time.Duration `env:"ORCHESTRY_CERTS_RETRY_MAX" envDefault:"1h"`
	// FailureBudget is how many failed attempts a domain may have within
	// FailureWindow; beyond it the next waits for the window (Let's
	// Encrypt allows 5 failed validations per hostname per hour).
	FailureBudget int `env:"ORCHESTRY_CERTS_FAILURE_BUDGET" envDefault:"5"`
	// FailureWindow is the period of the failure budget.
	FailureWindow time.Duration `env:"ORCHESTRY_CERTS_FAILURE_WINDOW" envDefault:"1h"`
	// ARIRecheck is the longest wait between two checks of an ACME
	// certificate's renewal information (the CA's Retry-After, when
	// shorter, wins).
	ARIRecheck time.Duration `env:"ORCHESTRY_CERTS_ARI_RECHECK" envDefault:"6h"`
	// Concurrency is how many domains are issued at once at most.
	Concurrency int `env:"ORCHESTRY_CERTS_CONCURRENCY" envDefault:"4"`
	// NatsReplicas is how many NATS servers hold each stream and bucket
	// this service provisions (3 on a three-node JetStream cluster).
	NatsReplicas int `env:"ORCHESTRY_NATS_REPLICAS" envDefault:"1"`
}

// caFile is the CA file: CAFile, else under DataDir.
func (cfg Config) caFile() string {
	if cfg.CAFile != "" {
		return cfg.CAFile
	}
	return filepath.Join(cfg.DataDir, "certs", "ca.crt")
}

func (cfg Config) validate() error {
	switch {
	case cfg.Provider != events.ProviderSelfSigned && cfg.Provider != events.ProviderACME:
		return fmt.Errorf("certs: ORCHESTRY_CERTS_PROVIDER must be selfsigned or acme, not %q", cfg.Provider)
	case cfg.RetryBase <= 0 || cfg.RetryMax < cfg.RetryBase:
		return fmt.Errorf("certs: ORCHESTRY_CERTS_RETRY_MAX (%s) must be at least ORCHESTRY_CERTS_RETRY_BASE (%s) > 0", cfg.RetryMax, cfg.RetryBase)
	case cfg.FailureBudget < 0 || cfg.FailureWindow <= 0:
		return errors.New("certs: ORCHESTRY_CERTS_FAILURE_BUDGET must not be negative and ORCHESTRY_CERTS_FAILURE_WINDOW must be positive")
	case cfg.AttemptTimeout <= 0 || cfg.ACMETimeout <= 0 || cfg.ARIRecheck <= 0:
		return errors.New("certs: ORCHESTRY_CERTS_ATTEMPT_TIMEOUT, ORCHESTRY_ACME_TIMEOUT and ORCHESTRY_CERTS_ARI_RECHECK must be positive")
	case cfg.Concurrency < 1:
		return fmt.Errorf("certs: ORCHESTRY_CERTS_CONCURRENCY must be at least 1, not %d", cfg.Concurrency)
	case cfg.Provider == events.ProviderACME && cfg.ACMEDirectory == "":
		return errors.New("certs: ORCHESTRY_ACME_DIRECTORY is required with the acme provider")
	}
	return nil
}

// Service is one certs replica.
type Service struct {
	cfg    Config
	nc     *nats.Conn
	js     jetstream.JetStream
	log    zerolog.Logger
	source string

	backoff schedule.Backoff
	budget  schedule.Budget

	// mu guards wanted.
	mu sync.Mutex
	// wanted holds, per domain, the apps that want a certificate for it.
	wanted map[string]map[string]bool
	gate   events.Gate
	kick   chan struct{}

	// set by Run
	store      *bundle.Store
	selfsigned *selfsigned.Issuer
	acme       *acme.Issuer

	// Test hooks: the lease bucket and its TTL, and whether a stop keeps
	// the lease as a crashed replica would.
	leaseBucket string
	leaseTTL    time.Duration
	crash       bool

	prom *promMetrics
}

var replicaRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// New checks the configuration and prepares the service.
func New(nc *nats.Conn, cfg Config, log zerolog.Logger) (*Service, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Replica == "" {
		cfg.Replica = defaultReplica()
	}
	if !replicaRE.MatchString(cfg.Replica) {
		return nil, fmt.Errorf("certs: ORCHESTRY_CERTS_REPLICA %q must be 1-64 letters, digits, '_' or '-'", cfg.Replica)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("certs: jetstream: %w", err)
	}
	return &Service{
		cfg:         cfg,
		nc:          nc,
		js:          js,
		log:         log.With().Str("service", "certs").Str("replica", cfg.Replica).Logger(),
		source:      "certs/" + cfg.Replica,
		backoff:     schedule.Backoff{Base: cfg.RetryBase, Max: cfg.RetryMax, Jitter: 0.2},
		budget:      schedule.Budget{Max: cfg.FailureBudget, Per: cfg.FailureWindow},
		wanted:      map[string]map[string]bool{},
		kick:        make(chan struct{}, 1),
		leaseBucket: events.BucketCertsLease,
		leaseTTL:    events.CertsLeaseTTL,
		prom:        newPromMetrics(),
	}, nil
}

// defaultReplica is <hostname>-<pid>, reduced to the replica id alphabet.
func defaultReplica() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "certs"
	}
	b := []byte(host)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			b[i] = '_'
		}
	}
	if len(b) > 50 {
		b = b[:50]
	}
	return string(b) + "-" + strconv.Itoa(os.Getpid())
}

// Replica returns this replica's id.
func (s *Service) Replica() string { return s.cfg.Replica }

// Run provisions the streams and buckets, serves HTTP-01 challenges,
// follows routing.changed and, while it holds the issuer lease, issues and
// renews certificates, until ctx ends. It returns nil when ctx ends.
func (s *Service) Run(ctx context.Context) error {
	if err := events.ProvisionFor(ctx, s.js, s.cfg.NatsReplicas, events.ServiceCerts); err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	kvs := map[string]jetstream.KeyValue{}
	for _, name := range []string{events.BucketCerts, events.BucketACMEChallenges, events.BucketCertsIssuer, s.leaseBucket} {
		kv, err := s.js.KeyValue(ctx, name)
		if err != nil {
			return quiet(ctx, fmt.Errorf("certs: bucket %s: %w", name, err))
		}
		kvs[name] = kv
	}
	s.store = bundle.NewStore(kvs[events.BucketCerts])
	s.selfsigned = selfsigned.New(kvs[events.BucketCertsIssuer], s.cfg.caFile(), s.log)
	if s.cfg.Provider == events.ProviderACME {
		routeLegoLog(s.log)
		provider := challenge.NewProvider(kvs[events.BucketACMEChallenges], 10*time.Second)
		var err error
		s.acme, err = acme.New(kvs[events.BucketCertsIssuer], provider, acme.Config{
			Directory: s.cfg.ACMEDirectory, Email: s.cfg.ACMEEmail,
			EABKid: s.cfg.ACMEEABKid, EABHMAC: s.cfg.ACMEEABHMAC,
			CABundle: s.cfg.ACMECABundle, Timeout: s.cfg.ACMETimeout, Profile: s.cfg.ACMEProfile,
		}, s.log)
		if err != nil {
			return fmt.Errorf("certs: %w", err)
		}
	}
	issuerLease, err := lease.New(kvs[s.leaseBucket], lease.Config{
		Key: events.CertsLeaseKey, Holder: s.cfg.Replica, TTL: s.leaseTTL, KeepOnStop: s.crash,
	}, s.log)
	if err != nil {
		return fmt.Errorf("certs: %w", err)
	}

	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if s.cfg.HTTP01Addr != "" {
		srv, ln, err := s.listenHTTP01(kvs[events.BucketACMEChallenges])
		if err != nil {
			return err
		}
		wg.Go(func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Error().Err(err).Msg("HTTP-01 server")
			}
		})
		wg.Go(func() {
			<-ctx.Done()
			sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer scancel()
			_ = srv.Shutdown(sctx)
		})
	}
	cc, err := s.followRouting(ctx)
	if err != nil {
		return quiet(ctx, err)
	}
	defer cc.Stop()
	s.log.Info().Str("provider", s.cfg.Provider).Str("http01", s.cfg.HTTP01Addr).Msg("certs started")
	return issuerLease.Run(ctx, s.lead)
}

// listenHTTP01 opens the challenge server's listener.
func (s *Service) listenHTTP01(kv jetstream.KeyValue) (*http.Server, net.Listener, error) {
	ln, err := net.Listen("tcp", s.cfg.HTTP01Addr)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: ORCHESTRY_CERTS_HTTP01_ADDR: %w", err)
	}
	return &http.Server{
		Handler:           challenge.Handler(kv, s.log),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
	}, ln, nil
}

// quiet turns an error caused by ctx ending into nil.
func quiet(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// issuerFor is the provider of domain's certificate: the local CA for the
// self-signed provider and for the configured private suffixes.
func (s *Service) issuerFor(domain string) issue.Issuer {
	if s.acme == nil {
		return s.selfsigned
	}
	for _, suf := range s.cfg.SelfSignedSuffixes {
		suf = strings.Trim(strings.TrimSpace(suf), ".")
		if suf != "" && (domain == suf || strings.HasSuffix(domain, "."+suf)) {
			return s.selfsigned
		}
	}
	return s.acme
}
