package certs

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/orchestry/orchestry/pkg/events"
	"github.com/orchestry/orchestry/pkg/events/eventstest"
	"github.com/orchestry/orchestry/services/certs/pebbletest"
	"github.com/orchestry/orchestry/services/certs/schedule"
)

// (a) A certificate from a real ACME CA through HTTP-01, answered by the
// service's own challenge server from the acme-challenges bucket.
func TestACMEIssuesThroughHTTP01(t *testing.T) {
	srv := eventstest.Start(t, "")
	nc, js := srv.Connect(t)
	port := freePort(t)
	p := pebbletest.New(t, port, time.Minute)
	p.Start()
	seen := collect(t, nc)
	cfg := acmeConfig(t, "one", p, port)
	cfg.ACMEProfile = "default"
	start(t, nc, cfg, nil)

	const domain = "shop.orchestry-test.com"
	publishApp(t, js, "shop", domain, 1)
	waitFor(t, 30*time.Second, "cert.issued", func() bool { return len(seen.issued(domain)) == 1 })

	b := stored(t, js, domain)
	if b.Provider != events.ProviderACME {
		t.Fatalf("provider %s", b.Provider)
	}
	leaf := verify(t, b, p.Roots())
	ev := seen.issued(domain)[0]
	if *ev.issued != b.Certificate {
		t.Fatalf("event %+v, stored summary %+v", *ev.issued, b.Certificate)
	}
	if ev.source != "certs/one" {
		t.Fatalf("source %q", ev.source)
	}
	seen.noKeys(t)
	// Pebble offers renewal information: renew_at lies in its window
	// (two days around two thirds of the lifetime), before expiry.
	ideal := schedule.RenewAt(leaf.NotBefore, leaf.NotAfter)
	if d := b.RenewAt.Sub(ideal); d < -25*time.Hour || d > 25*time.Hour {
		t.Fatalf("renew_at %s is %s from the ARI window's middle %s", b.RenewAt, d, ideal)
	}
	if lifetime := leaf.NotAfter.Sub(leaf.NotBefore); lifetime < 89*24*time.Hour {
		t.Fatalf("lifetime %s", lifetime)
	}
	// The challenge answer was cleaned up.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, events.BucketACMEChallenges)
	if err != nil {
		t.Fatal(err)
	}
	if keys, err := kv.Keys(ctx); err == nil && len(keys) > 0 {
		t.Fatalf("challenge tokens left: %v", keys)
	}
	// The account is kept for reuse.
	ikv, err := js.KeyValue(ctx, events.BucketCertsIssuer)
	if err != nil {
		t.Fatal(err)
	}
	keys, _ := ikv.Keys(ctx)
	if len(keys) != 1 || !strings.HasPrefix(keys[0], "acme-account.") {
		t.Fatalf("issuer bucket keys %v, want one ACME account", keys)
	}
}

// (b) A short-lived certificate is renewed before it expires, inside the
// renewal window its CA suggests (moved by the test through Pebble's
// management API), and the new serial replaces the old in KV.
func TestACMERenewsShortLivedCertificate(t *testing.T) {
	srv := eventstest.Start(t, "")
	nc, js := srv.Connect(t)
	port := freePort(t)
	p := pebbletest.New(t, port, 40*time.Second)
	p.Start()
	seen := collect(t, nc)
	cfg := acmeConfig(t, "one", p, port)
	cfg.ACMEProfile = "shortlived"
	cfg.ARIRecheck = 500 * time.Millisecond
	start(t, nc, cfg, nil)

	const domain = "short.orchestry-test.com"
	publishApp(t, js, "short", domain, 1)
	waitFor(t, 30*time.Second, "first certificate", func() bool { return len(seen.issued(domain)) >= 1 })
	first := stored(t, js, domain)
	if life := first.NotAfter.Sub(first.NotBefore); life > time.Minute {
		t.Fatalf("lifetime %s, want the short profile", life)
	}
	if first.RenewAt.After(first.NotAfter) || first.RenewAt.Before(first.NotBefore) {
		t.Fatalf("renew_at %s outside the certificate's life", first.RenewAt)
	}
	// The CA moves its window to start a second from now: the service
	// picks a time inside it at its next check.
	winStart, winEnd := time.Now().Add(time.Second), time.Now().Add(3*time.Second)
	p.SetRenewalWindow(first.CertPEM, winStart, winEnd)
	waitFor(t, 30*time.Second, "renewal", func() bool { return len(seen.issued(domain)) >= 2 })
	renewal := seen.issued(domain)[1]
	if renewal.issued.Serial == first.Serial {
		t.Fatal("renewal kept the serial")
	}
	if renewal.arrived.Before(winStart.Add(-time.Second)) {
		t.Fatalf("renewed at %s, before the window opened at %s", renewal.arrived, winStart)
	}
	if !renewal.arrived.Before(first.NotAfter) {
		t.Fatalf("renewed at %s, after the first expired at %s", renewal.arrived, first.NotAfter)
	}
	t.Logf("renewed %s after the window opened, %s before the old certificate expired",
		renewal.arrived.Sub(winStart).Round(time.Millisecond), first.NotAfter.Sub(renewal.arrived).Round(time.Millisecond))
	waitFor(t, 5*time.Second, "new serial stored", func() bool {
		return stored(t, js, domain).Serial != first.Serial
	})
	verify(t, stored(t, js, domain), p.Roots())
}

// (c) With the CA down a domain fails (cert.failed with a reason and the
// next attempt) while another, served by the local CA, is issued; once
// the CA is up the retry succeeds.
func TestACMEDownThenUp(t *testing.T) {
	srv := eventstest.Start(t, "")
	nc, js := srv.Connect(t)
	port := freePort(t)
	p := pebbletest.New(t, port, time.Minute) // not started: the CA is down
	seen := collect(t, nc)
	start(t, nc, acmeConfig(t, "one", p, port), nil)

	const acmeDomain, localDomain = "down.orchestry-test.com", "dev.localhost"
	publishApp(t, js, "down", acmeDomain, 1)
	publishApp(t, js, "dev", localDomain, 1)

	waitFor(t, 20*time.Second, "two failures", func() bool { return len(seen.failed(acmeDomain)) >= 2 })
	f := seen.failed(acmeDomain)[0]
	if f.failed.Reason == "" || !f.failed.NextAttempt.After(f.arrived.Add(-time.Second)) {
		t.Fatalf("failure %+v", *f.failed)
	}
	if !strings.Contains(f.failed.Reason, "directory") {
		t.Fatalf("reason does not name the unreachable directory: %s", f.failed.Reason)
	}
	waitFor(t, 10*time.Second, "the local domain is issued meanwhile", func() bool { return len(seen.issued(localDomain)) == 1 })
	if b := stored(t, js, localDomain); b.Provider != events.ProviderSelfSigned {
		t.Fatalf("local domain from %s", b.Provider)
	}
	if len(seen.issued(acmeDomain)) != 0 {
		t.Fatal("issued while the CA is down")
	}

	p.Start()
	waitFor(t, 30*time.Second, "issued once the CA is up", func() bool { return len(seen.issued(acmeDomain)) == 1 })
	verify(t, stored(t, js, acmeDomain), p.Roots())
	if n := len(seen.issued(localDomain)); n != 1 {
		t.Fatalf("local domain issued %d times", n)
	}
	seen.noKeys(t)
}
