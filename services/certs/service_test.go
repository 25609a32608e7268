package certs

import (
	"crypto/x509"
	"os"
	"testing"
	"time"

	"github.com/orchestry/orchestry/pkg/events"
	"github.com/orchestry/orchestry/pkg/events/eventstest"
)

// (d) Two replicas: only the lease holder issues; when it dies, the other
// takes over within two lease TTLs.
func TestTwoReplicasOneIssuer(t *testing.T) {
	srv := eventstest.Start(t, "")
	nc, js := srv.Connect(t)
	const ttl = 1500 * time.Millisecond
	lease := shortLease(t, js, ttl)
	seen := collect(t, nc)
	crashing := func(s *Service) { lease(s); s.crash = true }
	r1 := start(t, nc, testConfig(t, "one"), crashing)
	r2 := start(t, nc, testConfig(t, "two"), crashing)

	domains := []string{"a.orchestry-test.com", "b.orchestry-test.com", "c.orchestry-test.com"}
	for i, d := range domains {
		publishApp(t, js, "app"+string(rune('a'+i)), d, 1)
	}
	for _, d := range domains {
		waitFor(t, 10*time.Second, d+" issued", func() bool { return len(seen.issued(d)) >= 1 })
	}
	time.Sleep(2 * ttl) // renewals of the lease; nothing issued twice
	leader := ""
	for _, d := range domains {
		evs := seen.issued(d)
		if len(evs) != 1 {
			t.Fatalf("%s issued %d times", d, len(evs))
		}
		if leader == "" {
			leader = evs[0].source
		}
		if evs[0].source != leader {
			t.Fatalf("%s issued by %s, %s by %s", domains[0], leader, d, evs[0].source)
		}
	}
	standby := r2
	if leader == "certs/two" {
		r1, standby = r2, r1
	}
	r1.stop(t) // dies holding the lease
	stopped := time.Now()
	const late = "late.orchestry-test.com"
	publishApp(t, js, "late", late, 1)
	waitFor(t, 2*ttl+time.Second, "the standby issues", func() bool { return len(seen.issued(late)) == 1 })
	t.Logf("taken over %s after the leader died", time.Since(stopped).Round(time.Millisecond))
	if src := seen.issued(late)[0].source; src != "certs/"+standby.svc.Replica() {
		t.Fatalf("issued by %s", src)
	}
	for _, d := range domains {
		if n := len(seen.issued(d)); n != 1 {
			t.Fatalf("%s issued again (%d) after the takeover", d, n)
		}
	}
}

// (e) Self-signed: the leaf verifies against the CA file; a restarted
// service (another replica, even) reuses the same CA.
func TestSelfSignedCAPersists(t *testing.T) {
	srv := eventstest.Start(t, "")
	nc, js := srv.Connect(t)
	seen := collect(t, nc)
	cfg := testConfig(t, "one")
	r := start(t, nc, cfg, nil)
	publishApp(t, js, "web", "web.orchestry-test.com", 1)
	waitFor(t, 10*time.Second, "issued", func() bool { return len(seen.issued("web.orchestry-test.com")) == 1 })
	caPEM, err := os.ReadFile(cfg.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		t.Fatal("CA file is not PEM")
	}
	if string(caPEM) != "" && containsKey(caPEM) {
		t.Fatal("CA file holds a private key")
	}
	b := stored(t, js, "web.orchestry-test.com")
	leaf := verify(t, b, roots)
	if b.Provider != events.ProviderSelfSigned || leaf.NotAfter.Sub(leaf.NotBefore) != 90*24*time.Hour {
		t.Fatalf("provider %s, lifetime %s", b.Provider, leaf.NotAfter.Sub(leaf.NotBefore))
	}
	if want := leaf.NotAfter.Add(-30 * 24 * time.Hour); !b.RenewAt.Equal(want) {
		t.Fatalf("renew_at %s, want %s", b.RenewAt, want)
	}
	r.stop(t)

	cfg2 := testConfig(t, "two")
	start(t, nc, cfg2, nil)
	publishApp(t, js, "api", "api.orchestry-test.com", 1)
	waitFor(t, 10*time.Second, "issued after restart", func() bool { return len(seen.issued("api.orchestry-test.com")) == 1 })
	caPEM2, err := os.ReadFile(cfg2.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	if string(caPEM2) != string(caPEM) {
		t.Fatal("the restarted service wrote another CA")
	}
	verify(t, stored(t, js, "api.orchestry-test.com"), roots)
	if n := len(seen.issued("web.orchestry-test.com")); n != 1 {
		t.Fatalf("a valid certificate was issued again after the restart (%d)", n)
	}
	seen.noKeys(t)
}

func containsKey(b []byte) bool {
	for i := 0; i+11 <= len(b); i++ {
		if string(b[i:i+11]) == "PRIVATE KEY" {
			return true
		}
	}
	return false
}
