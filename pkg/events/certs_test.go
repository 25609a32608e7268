package events_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/orchestry/orchestry/pkg/events"
)

func TestCertKeyRoundTrip(t *testing.T) {
	for _, tc := range []struct{ domain, key string }{
		{"shop.example.com", "shop.example.com"},
		{"*.example.com", "_wildcard.example.com"},
	} {
		if got := events.CertKey(tc.domain); got != tc.key {
			t.Errorf("CertKey(%s) = %s, want %s", tc.domain, got, tc.key)
		}
		if got := events.CertDomain(tc.key); got != tc.domain {
			t.Errorf("CertDomain(%s) = %s, want %s", tc.key, got, tc.domain)
		}
	}
}

func TestACertBundleNeverPrintsItsKey(t *testing.T) {
	b := events.CertBundle{Certificate: events.Certificate{Domain: "a.example.com", Serial: "01"},
		Provider: events.ProviderSelfSigned, KeyPEM: "-----BEGIN EC PRIVATE KEY-----\nSECRET\n-----END EC PRIVATE KEY-----\n"}
	for _, s := range []string{b.String(), fmt.Sprint(b), fmt.Sprintf("%v %+v %#v %s", b, b, b, b)} {
		if strings.Contains(s, "SECRET") {
			t.Fatalf("printed bundle holds its key: %s", s)
		}
	}
}

func TestAWildcardCertificateEventRoundTrips(t *testing.T) {
	now := time.Now().UTC()
	c := events.Certificate{Domain: "*.example.com", Serial: "0a", NotBefore: now, NotAfter: now.Add(time.Hour), Issuer: "test"}
	subject := events.CertIssued(c.Domain)
	env, err := events.NewEnvelope("certs", subject, c)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := events.Decode(subject, raw); err != nil {
		t.Fatalf("decode on %s: %v", subject, err)
	}
	if _, err := events.Decode(events.CertIssued("other.example.com"), raw); err == nil {
		t.Fatal("decoded on another domain's subject")
	}
}
