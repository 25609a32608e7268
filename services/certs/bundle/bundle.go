// Package bundle builds the certificate bundle of a domain (events.CertBundle:
// chain, private key and summary) from what a provider issued, and reads
// and writes bundles in the certs KV bucket. Nothing here puts a private
// key into an error or a log line.
package bundle

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/orchestry/orchestry/pkg/events"
)

// Make builds the bundle of domain from a PEM chain (leaf first) and the
// leaf's PEM private key: the leaf must name domain and match the key.
func Make(domain, provider string, chainPEM, keyPEM []byte, renewAt, issuedAt time.Time) (events.CertBundle, error) {
	chain, err := Chain(string(chainPEM))
	if err != nil {
		return events.CertBundle{}, err
	}
	leaf := chain[0]
	if !slices.Contains(leaf.DNSNames, domain) {
		return events.CertBundle{}, fmt.Errorf("bundle: certificate names %v, not %s", leaf.DNSNames, domain)
	}
	if _, err := tls.X509KeyPair(chainPEM, keyPEM); err != nil {
		return events.CertBundle{}, errors.New("bundle: private key does not match the certificate or does not parse")
	}
	b := events.CertBundle{
		Certificate: Summary(domain, leaf),
		Provider:    provider,
		CertPEM:     string(chainPEM),
		KeyPEM:      string(keyPEM),
		RenewAt:     renewAt.UTC(),
		IssuedAt:    issuedAt.UTC(),
	}
	if err := b.Validate(); err != nil {
		return events.CertBundle{}, fmt.Errorf("bundle: %w", err)
	}
	return b, nil
}

// Summary is the published summary of leaf as the certificate of domain.
func Summary(domain string, leaf *x509.Certificate) events.Certificate {
	fp := sha256.Sum256(leaf.Raw)
	return events.Certificate{
		Domain:            domain,
		Serial:            hex.EncodeToString(leaf.SerialNumber.Bytes()),
		NotBefore:         leaf.NotBefore.UTC(),
		NotAfter:          leaf.NotAfter.UTC(),
		Issuer:            leaf.Issuer.CommonName,
		FingerprintSHA256: hex.EncodeToString(fp[:]),
	}
}

// Chain parses every certificate of a PEM chain, leaf first.
func Chain(chainPEM string) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	rest := []byte(chainPEM)
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("bundle: parse certificate %d: %w", len(out), err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("bundle: no certificate in the chain")
	}
	return out, nil
}

// Store reads and writes bundles in the certs bucket, one per
// events.CertKey(domain).
type Store struct {
	kv jetstream.KeyValue
}

// NewStore returns the store over bucket kv (events.BucketCerts).
func NewStore(kv jetstream.KeyValue) *Store { return &Store{kv: kv} }

// Get returns the stored bundle of domain; ok is false when there is none.
func (s *Store) Get(ctx context.Context, domain string) (b events.CertBundle, ok bool, err error) {
	e, err := s.kv.Get(ctx, events.CertKey(domain))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return b, false, nil
	}
	if err != nil {
		return b, false, fmt.Errorf("bundle: read %s: %w", domain, err)
	}
	if err := json.Unmarshal(e.Value(), &b); err != nil {
		return b, false, fmt.Errorf("bundle: decode %s: %w", domain, err)
	}
	return b, true, nil
}

// Put stores b under its domain, replacing the one before.
func (s *Store) Put(ctx context.Context, b events.CertBundle) error {
	raw, err := json.Marshal(b)
	if err != nil {
		return fmt.Errorf("bundle: encode %s: %w", b.Domain, err)
	}
	if _, err := s.kv.Put(ctx, events.CertKey(b.Domain), raw); err != nil {
		return fmt.Errorf("bundle: store %s: %w", b.Domain, err)
	}
	return nil
}
