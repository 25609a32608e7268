package certsync

import (
	"context"
	"encoding/json"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/orchestry/orchestry/pkg/events"
	"github.com/orchestry/orchestry/pkg/events/eventstest"
	"github.com/orchestry/orchestry/services/renderer/tlsfiles"
)

// bundle is a self-signed bundle for domain; serial names it in the
// summary only.
func bundle(t *testing.T, domain string, serial int64) events.CertBundle {
	t.Helper()
	now := time.Now()
	certPEM, keyPEM, err := tlsfiles.SelfSigned(domain, now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return events.CertBundle{
		Certificate: events.Certificate{Domain: domain, Serial: strconv.FormatInt(serial, 16), NotBefore: now, NotAfter: now.Add(time.Hour), Issuer: domain},
		Provider:    events.ProviderSelfSigned,
		CertPEM:     string(certPEM),
		KeyPEM:      string(keyPEM),
	}
}

func TestStoredCertificatesAreWrittenWithAPrivateKeyOnlyTheOwnerReads(t *testing.T) {
	srv := eventstest.Start(t, "")
	_, js := srv.Connect(t)
	ctx := context.Background()
	if err := events.Provision(ctx, js, 1); err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, events.BucketCerts)
	if err != nil {
		t.Fatal(err)
	}
	put := func(b events.CertBundle) {
		t.Helper()
		raw, _ := json.Marshal(b)
		if _, err := kv.Put(ctx, events.CertKey(b.Domain), raw); err != nil {
			t.Fatal(err)
		}
	}
	first := bundle(t, "a.example.com", 1)
	put(first) // stored before the sync starts: written before CaughtUp
	dir := t.TempDir()
	var changes atomic.Int64
	s := New(js, dir, func() { changes.Add(1) }, zerolog.New(zerolog.NewTestWriter(t)))
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(rctx) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-s.CaughtUp():
	case <-time.After(5 * time.Second):
		t.Fatal("not caught up within 5s")
	}
	if got, _ := os.ReadFile(tlsfiles.CertFile(dir, "a.example.com")); string(got) != first.CertPEM || changes.Load() != 1 {
		t.Fatalf("after catching up: cert file %q, %d changes", got, changes.Load())
	}
	fi, err := os.Stat(tlsfiles.KeyFile(dir, "a.example.com"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}
	if err := tlsfiles.Check(dir, "a.example.com", time.Now()); err != nil {
		t.Fatal(err)
	}

	wait := func(n int64) {
		t.Helper()
		for end := time.Now().Add(5 * time.Second); changes.Load() < n && time.Now().Before(end); {
			time.Sleep(10 * time.Millisecond)
		}
		if changes.Load() != n {
			t.Fatalf("%d changes, want %d", changes.Load(), n)
		}
	}
	// A renewal replaces the pair.
	second := bundle(t, "a.example.com", 2)
	put(second)
	wait(2)
	if got, _ := os.ReadFile(tlsfiles.CertFile(dir, "a.example.com")); string(got) != second.CertPEM {
		t.Fatal("renewed certificate not written")
	}
	// A bundle whose key belongs to another certificate is refused; the
	// same bundle again writes nothing.
	bad := bundle(t, "a.example.com", 3)
	bad.KeyPEM = first.KeyPEM
	put(bad)
	put(second)
	wildcard := bundle(t, "*.example.com", 4)
	put(wildcard) // a marker: once written, the two before were handled
	wait(3)
	if got, _ := os.ReadFile(tlsfiles.CertFile(dir, "a.example.com")); string(got) != second.CertPEM {
		t.Fatal("a mismatched bundle replaced the good pair")
	}
	if got, _ := os.ReadFile(tlsfiles.CertFile(dir, "*.example.com")); string(got) != wildcard.CertPEM {
		t.Fatal("wildcard certificate not written under its domain")
	}
	if err := tlsfiles.Check(dir, "*.example.com", time.Now()); err != nil {
		t.Fatalf("wildcard pair: %v", err)
	}
}
