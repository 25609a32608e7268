package events

import (
	"fmt"
	"strings"
	"time"
)

// Certificate providers of the certs service.
const (
	ProviderACME       = "acme"
	ProviderSelfSigned = "selfsigned"
)

// wildcardToken stands for a leading "*." in keys and subjects, which may
// not hold '*'.
const wildcardToken = "_wildcard."

// CertKey is the BucketCerts key of domain: the domain itself, with a
// leading "*." written as "_wildcard." (KV keys may not hold '*').
func CertKey(domain string) string {
	if rest, ok := strings.CutPrefix(domain, "*."); ok {
		return wildcardToken + rest
	}
	return domain
}

// CertDomain is the domain of a BucketCerts key, the inverse of CertKey.
func CertDomain(key string) string {
	if rest, ok := strings.CutPrefix(key, wildcardToken); ok {
		return "*." + rest
	}
	return key
}

// CertBundle is the value stored per domain in BucketCerts: the
// certificate summary, the PEM chain (leaf first) and the PEM private key.
// It is never published as an event: cert.issued carries the Certificate
// summary alone. String leaves the key out, so a bundle printed by
// mistake does not leak it.
type CertBundle struct {
	Certificate
	// Provider is ProviderACME or ProviderSelfSigned.
	Provider string `json:"provider"`
	// CertPEM is the leaf certificate followed by its intermediates.
	CertPEM string `json:"cert_pem"`
	// KeyPEM is the leaf's private key.
	KeyPEM string `json:"key_pem"`
	// RenewAt is when the issuer means to renew: as the CA's renewal
	// information says, or when a third of the lifetime remains.
	RenewAt time.Time `json:"renew_at"`
	// IssuedAt is when the issuer stored it.
	IssuedAt time.Time `json:"issued_at"`
}

// String describes the bundle without its private key.
func (b CertBundle) String() string {
	return fmt.Sprintf("certificate %s serial %s from %s (%s), valid %s to %s",
		b.Domain, b.Serial, b.Issuer, b.Provider, b.NotBefore.Format(time.RFC3339), b.NotAfter.Format(time.RFC3339))
}

// GoString is String, for %#v.
func (b CertBundle) GoString() string { return b.String() }

// Validate checks the summary and that the chain and key are PEM text.
func (b CertBundle) Validate() error {
	var f fields
	f.check("domain", CheckDomain(b.Domain))
	if !b.NotAfter.After(b.NotBefore) {
		f.add("not_after", "must be after not_before")
	}
	if b.Provider != ProviderACME && b.Provider != ProviderSelfSigned {
		f.add("provider", "must be acme or selfsigned")
	}
	if !strings.HasPrefix(b.CertPEM, "-----BEGIN CERTIFICATE-----") {
		f.add("cert_pem", "must be a PEM certificate chain")
	}
	if !strings.HasPrefix(b.KeyPEM, "-----BEGIN ") || !strings.Contains(b.KeyPEM, "PRIVATE KEY-----") {
		f.add("key_pem", "must be a PEM private key")
	}
	return f.err()
}
