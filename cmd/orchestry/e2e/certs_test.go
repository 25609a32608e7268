package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orchestry/orchestry/pkg/events"
	"github.com/orchestry/orchestry/services/renderer/tlsfiles"
)

// storeCert puts a new self-signed bundle for domain into the certs
// bucket, as the certs service does, and returns its certificate.
func (s *stack) storeCert(domain string) *x509.Certificate {
	s.t.Helper()
	certPEM, keyPEM, err := tlsfiles.SelfSigned(domain, time.Now(), time.Hour)
	if err != nil {
		s.t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		s.t.Fatal(err)
	}
	leaf := pair.Leaf
	b := events.CertBundle{
		Certificate: events.Certificate{Domain: domain, Serial: leaf.SerialNumber.Text(16), NotBefore: leaf.NotBefore, NotAfter: leaf.NotAfter, Issuer: domain},
		Provider:    events.ProviderSelfSigned, CertPEM: string(certPEM), KeyPEM: string(keyPEM),
	}
	raw, _ := json.Marshal(b)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	kv, err := s.js.KeyValue(ctx, events.BucketCerts)
	if err != nil {
		s.t.Fatal(err)
	}
	if _, err := kv.Put(ctx, events.CertKey(domain), raw); err != nil {
		s.t.Fatal(err)
	}
	return leaf
}

func TestARenewedCertificateGoesLiveWithoutAFailedRequest(t *testing.T) {
	s := newStack(t)
	const domain = "secure.example.test"
	first := s.storeCert(domain)
	b := startBackend(t, "b1")
	port := freePort(t)
	s.putApp("secure", port, "    domain: "+domain+"\n    ssl:\n      enabled: true\n")
	s.addBackend("secure", b)
	s.waitLive("secure", b.Port, true, 15*time.Second)
	s.settle()

	roots := x509.NewCertPool()
	roots.AddCert(first)
	var mu sync.Mutex
	trust := func(c *x509.Certificate) {
		mu.Lock()
		defer mu.Unlock()
		roots.AddCert(c)
	}
	// Each request on a new connection, so each sees the certificate
	// NGINX serves at that moment, verified against the trusted ones.
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	var lastSerial atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			for n := 0; n < 100_000; n++ {
				select {
				case <-stop:
					return
				default:
				}
				mu.Lock()
				pool := roots.Clone()
				mu.Unlock()
				client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
					TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: domain, MinVersion: tls.VersionTLS12}}}
				resp, err := client.Get(fmt.Sprintf("https://127.0.0.1:%d/", port))
				if err != nil || resp.StatusCode != http.StatusOK {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprint(err, resp))
					if resp != nil {
						resp.Body.Close()
					}
					continue
				}
				lastSerial.Store(resp.TLS.PeerCertificates[0].SerialNumber.Text(16))
				resp.Body.Close()
				ok.Add(1)
			}
		})
	}
	defer func() { close(stop); wg.Wait() }()
	time.Sleep(500 * time.Millisecond)
	if got, _ := lastSerial.Load().(string); got != first.SerialNumber.Text(16) {
		t.Fatalf("serving serial %q, want the stored %s", got, first.SerialNumber.Text(16))
	}

	// The renewal: trusted by clients first (as a CA-issued one would be),
	// then stored.
	renewed := s.storeCert(domain)
	trust(renewed)
	deadline := time.Now().Add(15 * time.Second)
	for lastSerial.Load().(string) != renewed.SerialNumber.Text(16) {
		if time.Now().After(deadline) {
			t.Fatalf("renewed serial %s not served within 15s", renewed.SerialNumber.Text(16))
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	if n := failed.Load(); n != 0 {
		t.Fatalf("%d of %d TLS requests failed around the renewal: %v", n, n+ok.Load(), firstErr.Load())
	}
	t.Logf("%d TLS requests, none failed; serial %s replaced by %s", ok.Load(), first.SerialNumber.Text(16), renewed.SerialNumber.Text(16))
}
