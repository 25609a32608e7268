package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/orchestry/orchestry/pkg/events"
	"github.com/orchestry/orchestry/services/certs"
	"github.com/orchestry/orchestry/services/certs/pebbletest"
)

// withACME runs a Pebble CA and a certs service issuing from it: Pebble
// validates HTTP-01 on 127.0.0.1 at the renderer's HTTP port, where NGINX
// proxies the challenge path to the certs service.
func withACME(p **pebbletest.Pebble) stackOption {
	return func(s *stack) {
		s.t.Helper()
		s.httpPort = freePort(s.t)
		*p = pebbletest.New(s.t, s.httpPort, 30*time.Second)
		(*p).Start()
		// Picked once Pebble holds its own ports, which it also picks
		// free: picked before, one of them could be this one.
		s.acmeChallenge = fmt.Sprintf("127.0.0.1:%d", freePort(s.t))
	}
}

// startCerts runs a certs service for Pebble p on the stack's NATS.
func (s *stack) startCerts(p *pebbletest.Pebble) {
	s.t.Helper()
	cs, err := certs.New(s.conn(events.ServiceCerts), certs.Config{
		Provider: events.ProviderACME, Replica: "e2e", DataDir: s.dataDir, CAFile: s.dataDir + "/ca.crt",
		HTTP01Addr: s.acmeChallenge, ACMEDirectory: p.Directory(), ACMECABundle: p.CABundle(), ACMEProfile: "shortlived",
		ACMETimeout: 5 * time.Second, AttemptTimeout: 30 * time.Second, RetryBase: 200 * time.Millisecond, RetryMax: time.Second,
		FailureBudget: 100, FailureWindow: time.Hour, ARIRecheck: 500 * time.Millisecond, Concurrency: 4,
	}, s.log.Level(zerolog.WarnLevel))
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(s.run("certs", cs.Run))
}

func TestACertificateIssuedThroughNginxHTTP01IsServedAndRenewedWithoutAFailedRequest(t *testing.T) {
	var p *pebbletest.Pebble
	s := newStack(t, withACME(&p))
	s.startCerts(p)
	issued := make(chan events.Certificate, 16)
	sub, err := s.nc.Subscribe(events.CertIssuedWildcard, func(m *nats.Msg) {
		if ev, err := events.Decode(m.Subject, m.Data); err == nil {
			issued <- ev.Payload.(events.Certificate)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()

	const domain = "shop.orchestry-e2e.com"
	b := startBackend(t, "b1")
	port := freePort(t)
	s.putApp("shop", port, "    domain: "+domain+"\n    ssl:\n      enabled: true\n")
	s.addBackend("shop", b)

	// Pebble validates through NGINX's HTTP port, NGINX proxies to the certs
	// service, which answers from the challenge bucket.
	var first events.Certificate
	select {
	case first = <-issued:
	case <-time.After(60 * time.Second):
		t.Fatal("no certificate issued within 60s")
	}
	roots := p.Roots()
	get := func(client *http.Client) (*x509.Certificate, error) {
		resp, err := client.Get(fmt.Sprintf("https://127.0.0.1:%d/", port))
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("status %s", resp.Status)
		}
		return resp.TLS.PeerCertificates[0], nil
	}
	client := func() *http.Client {
		return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
			TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: domain, MinVersion: tls.VersionTLS12}}}
	}
	// A real TLS request with SNI, the chain verified against Pebble's root.
	deadline := time.Now().Add(30 * time.Second)
	for {
		leaf, err := get(client())
		if err == nil && sameSerial(leaf, first.Serial) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the issued certificate %s not served within 30s: %v", first.Serial, err)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Renewal under load: the CA's renewal window opens now.
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	var serial atomic.Value
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
				leaf, err := get(client())
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				ok.Add(1)
				serial.Store(leaf)
			}
		})
	}
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}()
	bundle := s.storedBundle(domain)
	p.SetRenewalWindow(bundle.CertPEM, time.Now(), time.Now().Add(2*time.Second))
	var renewed events.Certificate
	select {
	case renewed = <-issued:
	case <-time.After(60 * time.Second):
		t.Fatal("not renewed within 60s of the window opening")
	}
	if renewed.Serial == first.Serial || !time.Now().Before(first.NotAfter) {
		t.Fatalf("renewal %s (first %s, expiring %s)", renewed.Serial, first.Serial, first.NotAfter)
	}
	deadline = time.Now().Add(30 * time.Second)
	for leaf, _ := serial.Load().(*x509.Certificate); leaf == nil || !sameSerial(leaf, renewed.Serial); leaf, _ = serial.Load().(*x509.Certificate) {
		if time.Now().After(deadline) {
			t.Fatalf("renewed serial %s not served within 30s", renewed.Serial)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	if n := failed.Load(); n != 0 || ok.Load() == 0 {
		t.Fatalf("%d of %d TLS requests failed around the renewal: %v", n, n+ok.Load(), firstErr.Load())
	}
	t.Logf("issued %s, renewed as %s %s before expiry; %d TLS requests across the renewal, none failed",
		first.Serial, renewed.Serial, time.Until(first.NotAfter).Round(time.Second), ok.Load())
}

// storedBundle reads domain's bundle from the certs bucket.
func (s *stack) storedBundle(domain string) events.CertBundle {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	kv, err := s.js.KeyValue(ctx, events.BucketCerts)
	if err != nil {
		s.t.Fatal(err)
	}
	e, err := kv.Get(ctx, events.CertKey(domain))
	if err != nil {
		s.t.Fatal(err)
	}
	var b events.CertBundle
	if err := json.Unmarshal(e.Value(), &b); err != nil {
		s.t.Fatal(err)
	}
	return b
}

// sameSerial reports whether leaf has the serial a cert.issued event names
// (hex, maybe with leading zeros).
func sameSerial(leaf *x509.Certificate, serial string) bool {
	n, ok := new(big.Int).SetString(serial, 16)
	return ok && n.Cmp(leaf.SerialNumber) == 0
}
