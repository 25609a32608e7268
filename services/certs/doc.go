// Package certs will issue and renew certificates (ACME or self-signed) for
// apps with TLS enabled and publish cert.issued.<domain> / cert.failed.<domain>.
package certs
