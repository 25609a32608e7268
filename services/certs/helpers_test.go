package certs

import (
	"context"
	"crypto/x509"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/orchestry/orchestry/pkg/events"
	"github.com/orchestry/orchestry/services/certs/bundle"
	"github.com/orchestry/orchestry/services/certs/pebbletest"
)

var nopLog = zerolog.Nop()

// testConfig is a fast configuration: quick retries, a generous budget.
func testConfig(t *testing.T, replica string) Config {
	return Config{
		Provider:           events.ProviderSelfSigned,
		Replica:            replica,
		CAFile:             t.TempDir() + "/ca.crt",
		HTTP01Addr:         "127.0.0.1:0",
		SelfSignedSuffixes: []string{"localhost", "test"},
		ACMETimeout:        5 * time.Second,
		AttemptTimeout:     30 * time.Second,
		RetryBase:          200 * time.Millisecond,
		RetryMax:           time.Second,
		FailureBudget:      100,
		FailureWindow:      time.Hour,
		ARIRecheck:         time.Hour,
		Concurrency:        4,
	}
}

// running is a service started by a test.
type running struct {
	svc    *Service
	cancel context.CancelFunc
	done   chan error
}

// start runs a certs service; tweak adjusts it before Run (test hooks).
func start(t *testing.T, nc *nats.Conn, cfg Config, tweak func(*Service)) *running {
	t.Helper()
	svc, err := New(nc, cfg, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel))
	if err != nil {
		t.Fatal(err)
	}
	if tweak != nil {
		tweak(svc)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{svc: svc, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- svc.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

func (r *running) stop(t *testing.T) {
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("Run returned %v", err)
		}
		r.done <- nil
	case <-time.After(15 * time.Second):
		t.Error("Run did not return within 15s of cancel")
	}
}

// shortLease gives the service a lease bucket with a short TTL.
func shortLease(t *testing.T, js jetstream.JetStream, ttl time.Duration) func(*Service) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "certs-lease-test", TTL: ttl, Storage: jetstream.MemoryStorage}); err != nil {
		t.Fatal(err)
	}
	return func(s *Service) {
		s.leaseBucket, s.leaseTTL = "certs-lease-test", ttl
	}
}

// publishApp states app with TLS on domain (deleted when domain is empty).
func publishApp(t *testing.T, js jetstream.JetStream, app, domain string, rev uint64) {
	t.Helper()
	rs := events.RoutingState{App: events.App{Metadata: events.Metadata{Name: app}}, Revision: rev}
	if domain == "" {
		rs.Deleted = true
	} else {
		rs.App.Spec.Networking = events.Networking{Domain: domain, SSL: events.SSL{Enabled: true}}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := events.Publish(ctx, js, "test", events.RoutingChanged(app), rs); err != nil {
		t.Fatal(err)
	}
}

// certEvent is one cert.issued or cert.failed seen by a test.
type certEvent struct {
	source  string
	issued  *events.Certificate
	failed  *events.CertFailure
	raw     string
	arrived time.Time
}

// collector gathers every cert.* event of the test.
type collector struct {
	mu  sync.Mutex
	all []certEvent
}

func collect(t *testing.T, nc *nats.Conn) *collector {
	t.Helper()
	c := &collector{}
	sub, err := nc.Subscribe("cert.>", func(m *nats.Msg) {
		ev, err := events.Decode(m.Subject, m.Data)
		if err != nil {
			t.Errorf("bad cert event on %s: %v", m.Subject, err)
			return
		}
		ce := certEvent{source: ev.Envelope.Source, raw: string(m.Data), arrived: time.Now()}
		switch p := ev.Payload.(type) {
		case events.Certificate:
			ce.issued = &p
		case events.CertFailure:
			ce.failed = &p
		}
		c.mu.Lock()
		c.all = append(c.all, ce)
		c.mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *collector) issued(domain string) []certEvent {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []certEvent
	for _, e := range c.all {
		if e.issued != nil && e.issued.Domain == domain {
			out = append(out, e)
		}
	}
	return out
}

func (c *collector) failed(domain string) []certEvent {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []certEvent
	for _, e := range c.all {
		if e.failed != nil && e.failed.Domain == domain {
			out = append(out, e)
		}
	}
	return out
}

// noKeys fails the test if any event carried private key material.
func (c *collector) noKeys(t *testing.T) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.all {
		if strings.Contains(e.raw, "PRIVATE KEY") || strings.Contains(e.raw, "key_pem") {
			t.Fatalf("an event carries a private key: %s", e.raw)
		}
	}
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("%s: not within %s", what, d)
}

// stored reads domain's bundle from the certs bucket.
func stored(t *testing.T, js jetstream.JetStream, domain string) events.CertBundle {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, events.BucketCerts)
	if err != nil {
		t.Fatal(err)
	}
	b, ok, err := bundle.NewStore(kv).Get(ctx, domain)
	if err != nil || !ok {
		t.Fatalf("bundle of %s: ok %v, %v", domain, ok, err)
	}
	if err := b.Validate(); err != nil {
		t.Fatalf("bundle of %s: %v", domain, err)
	}
	return b
}

// verify checks b's chain against roots for its domain and returns the leaf.
func verify(t *testing.T, b events.CertBundle, roots *x509.CertPool) *x509.Certificate {
	t.Helper()
	chain, err := bundle.Chain(b.CertPEM)
	if err != nil {
		t.Fatal(err)
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	if _, err := chain[0].Verify(x509.VerifyOptions{DNSName: b.Domain, Roots: roots, Intermediates: inter}); err != nil {
		t.Fatalf("%s does not verify: %v", b.Domain, err)
	}
	if b.Serial == "" || b.FingerprintSHA256 == "" || b.Issuer == "" || b.IssuedAt.IsZero() {
		t.Fatalf("summary incomplete: %s", b)
	}
	return chain[0]
}

// acmeConfig is testConfig for Pebble p with the HTTP-01 server on port.
func acmeConfig(t *testing.T, replica string, p *pebbletest.Pebble, port int) Config {
	cfg := testConfig(t, replica)
	cfg.Provider = events.ProviderACME
	cfg.ACMEDirectory = p.Directory()
	cfg.ACMECABundle = p.CABundle()
	cfg.HTTP01Addr = "127.0.0.1:" + strconv.Itoa(port)
	cfg.ACMEProfile = "default" // Pebble picks a random one otherwise
	return cfg
}
