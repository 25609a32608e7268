// Package issue is what the certs service asks of a certificate provider
// (package selfsigned: a local CA; package acme: an ACME CA through lego):
// obtain a certificate for one domain, and say when the CA wants it
// renewed, if it says so at all.
package issue

import (
	"context"
	"crypto/x509"
	"time"

	"github.com/orchestry/orchestry/services/certs/schedule"
)

// Issued is a freshly issued certificate.
type Issued struct {
	// ChainPEM is the leaf certificate followed by its intermediates.
	ChainPEM []byte
	// KeyPEM is the leaf's private key; it never leaves the certs bucket.
	KeyPEM []byte
}

// Renewal is a CA's renewal information for one certificate.
type Renewal struct {
	// Window is the suggested renewal window.
	Window schedule.Window
	// RetryAfter is when to ask again; zero when the CA did not say.
	RetryAfter time.Duration
	// CertID identifies the certificate an ARI renewal replaces.
	CertID string
}

// Request asks for a certificate.
type Request struct {
	// Domain is the one name the certificate is for.
	Domain string
	// Replaces is the CertID of the certificate being renewed from
	// renewal information; empty otherwise.
	Replaces string
}

// Issuer is a certificate provider.
type Issuer interface {
	// Provider is events.ProviderACME or events.ProviderSelfSigned.
	Provider() string
	// Obtain issues a certificate for req.Domain. It may take as long as
	// the CA does; when ctx ends first, it returns ctx's error and the
	// certificate, if any, is dropped.
	Obtain(ctx context.Context, req Request) (Issued, error)
	// RenewalInfo is the CA's renewal information for leaf, issued by
	// issuer; nil (and no error) when the CA offers none.
	RenewalInfo(ctx context.Context, leaf, issuer *x509.Certificate) (*Renewal, error)
}
