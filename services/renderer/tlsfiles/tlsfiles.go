// Package tlsfiles checks the certificate files of TLS apps before they are
// rendered, and creates self-signed ones for development. A TLS app whose
// files are missing or wrong is left out of the config rather than failing
// `nginx -t` for every app.
package tlsfiles

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// CertFile and KeyFile are the paths of domain's pair in dir, as the
// renderer points NGINX at them.
func CertFile(dir, domain string) string { return filepath.Join(dir, domain+".crt") }

// KeyFile is the path of domain's private key in dir.
func KeyFile(dir, domain string) string { return filepath.Join(dir, domain+".key") }

// Check reports why the pair of domain in dir cannot serve it at now: a
// file missing or unreadable, a key that does not match, a certificate that
// does not name domain, is not yet valid, or has expired.
func Check(dir, domain string, now time.Time) error {
	pair, err := tls.LoadX509KeyPair(CertFile(dir, domain), KeyFile(dir, domain))
	if err != nil {
		return fmt.Errorf("certificate for %s: %w", domain, err)
	}
	leaf := pair.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return fmt.Errorf("certificate for %s: %w", domain, err)
		}
	}
	host := domain
	if rest, ok := strings.CutPrefix(domain, "*."); ok {
		host = "any." + rest // a wildcard name must be covered by a wildcard certificate
	}
	if err := leaf.VerifyHostname(host); err != nil {
		return fmt.Errorf("certificate for %s: %w", domain, err)
	}
	if now.Before(leaf.NotBefore) || now.After(leaf.NotAfter) {
		return fmt.Errorf("certificate for %s: valid from %s to %s, not now", domain,
			leaf.NotBefore.Format(time.RFC3339), leaf.NotAfter.Format(time.RFC3339))
	}
	return nil
}

// Checker runs Check, remembering each pair's result until one of its
// files changes (by size or modification time) or, for a good pair, until
// its validity ends: a render cycle with many TLS apps stats their files
// instead of parsing them again. It is not safe for concurrent use.
type Checker struct {
	seen map[string]checked
}

type checked struct {
	crt, key os.FileInfo
	until    time.Time // a good pair's NotAfter; zero for a failed check
	err      error
}

// Check is Check(dir, domain, now), from memory when the files are the
// ones checked before.
func (c *Checker) Check(dir, domain string, now time.Time) error {
	crt, cerr := os.Stat(CertFile(dir, domain))
	key, kerr := os.Stat(KeyFile(dir, domain))
	if cerr != nil || kerr != nil {
		return Check(dir, domain, now) // says which file is missing
	}
	path := filepath.Join(dir, domain)
	if prev, ok := c.seen[path]; ok && same(prev.crt, crt) && same(prev.key, key) &&
		(prev.err != nil || now.Before(prev.until)) {
		return prev.err
	}
	err := Check(dir, domain, now)
	entry := checked{crt: crt, key: key, err: err}
	if err == nil {
		entry.until = notAfter(dir, domain)
	}
	if c.seen == nil {
		c.seen = map[string]checked{}
	}
	c.seen[path] = entry
	return err
}

func same(a, b os.FileInfo) bool { return a.Size() == b.Size() && a.ModTime().Equal(b.ModTime()) }

// notAfter is the end of validity of domain's certificate (zero when it
// cannot be read: then the next Check parses again).
func notAfter(dir, domain string) time.Time {
	b, err := os.ReadFile(CertFile(dir, domain))
	if err != nil {
		return time.Time{}
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return time.Time{}
	}
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return time.Time{}
	}
	return leaf.NotAfter
}

// SelfSignedLifetime is how long a development certificate is valid.
const SelfSignedLifetime = 90 * 24 * time.Hour

// WriteSelfSigned creates a self-signed ECDSA P-256 certificate for domain
// in dir, valid from now for SelfSignedLifetime. The key is written with
// mode 0600 and both files are replaced atomically.
func WriteSelfSigned(dir, domain string, now time.Time) error {
	certPEM, keyPEM, err := SelfSigned(domain, now, SelfSignedLifetime)
	if err != nil {
		return err
	}
	if _, err := WritePair(dir, domain, certPEM, keyPEM); err != nil {
		return fmt.Errorf("self-signed %s: %w", domain, err)
	}
	return nil
}

// SelfSigned returns a new self-signed ECDSA P-256 certificate for domain
// with a random serial, valid from now for lifetime, and its key (PKCS#8),
// both PEM.
func SelfSigned(domain string, now time.Time, lifetime time.Duration) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("self-signed %s: %w", domain, err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, fmt.Errorf("self-signed %s: %w", domain, err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: domain, Organization: []string{"Orchestry development"}},
		DNSNames:              []string{domain},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(lifetime),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("self-signed %s: %w", domain, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("self-signed %s: %w", domain, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}

// WritePair writes domain's certificate chain and private key (PEM) into
// dir, the key with mode 0600, each file replaced atomically and the key
// first, so a certificate is never on disk without its key. A pair already
// on disk byte for byte is left alone; changed reports whether a file was
// written.
func WritePair(dir, domain string, certPEM, keyPEM []byte) (changed bool, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false, fmt.Errorf("certificate files of %s: %w", domain, err)
	}
	for _, f := range []struct {
		path string
		data []byte
		mode os.FileMode
	}{{KeyFile(dir, domain), keyPEM, 0o600}, {CertFile(dir, domain), certPEM, 0o644}} {
		if old, err := os.ReadFile(f.path); err == nil && bytes.Equal(old, f.data) {
			continue
		}
		if err := writeAtomic(f.path, f.data, f.mode); err != nil {
			return changed, fmt.Errorf("certificate files of %s: %w", domain, err)
		}
		changed = true
	}
	return changed, nil
}

// Identity names the current files of domain's pair in dir by size and
// modification time ("" when one is missing): it changes whenever either
// file is replaced.
func Identity(dir, domain string) string {
	var sb strings.Builder
	for _, p := range []string{CertFile(dir, domain), KeyFile(dir, domain)} {
		fi, err := os.Stat(p)
		if err != nil {
			return ""
		}
		fmt.Fprintf(&sb, "%d.%d;", fi.Size(), fi.ModTime().UnixNano())
	}
	return sb.String()
}

// writeAtomic writes data to a temporary file with mode and renames it to
// path.
func writeAtomic(path string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, werr := f.Write(data)
	cerr := f.Close()
	if err := errors.Join(werr, cerr, os.Chmod(tmp, mode)); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return nil
}
