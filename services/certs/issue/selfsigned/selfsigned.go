// Package selfsigned issues certificates from a local CA, for development
// and closed networks: the CA (ECDSA P-256, ten years) is created once and
// kept in the certs-issuer KV bucket, so every replica that takes over
// issues from the same one, and its certificate (never its key) is written
// to a file a user can trust. Leaves are ECDSA P-256, 90 days, with the
// domain as their one name.
package selfsigned

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/orchestry/orchestry/pkg/events"
	"github.com/orchestry/orchestry/services/certs/issue"
)

// CAKey is the certs-issuer key of the local CA.
const CAKey = "selfsigned-ca"

// Lifetimes of the CA and of the leaves it signs.
const (
	CAValidity   = 10 * 365 * 24 * time.Hour
	LeafValidity = 90 * 24 * time.Hour
)

// CAName is the local CA's common name.
const CAName = "Orchestry local CA"

// backdate moves NotBefore back to absorb clock skew between machines.
const backdate = time.Minute

// record is the stored CA: certificate and key, PEM.
type record struct {
	CertPEM string `json:"cert_pem"`
	KeyPEM  string `json:"key_pem"`
}

// authority is the loaded CA.
type authority struct {
	cert    *x509.Certificate
	certPEM []byte
	key     *ecdsa.PrivateKey
}

// Issuer signs leaves with the local CA.
type Issuer struct {
	kv     jetstream.KeyValue
	caFile string
	log    zerolog.Logger

	mu sync.Mutex
	ca *authority
}

// New returns the issuer whose CA is kept in kv (events.BucketCertsIssuer)
// and whose certificate is written to caFile (nothing written when empty).
func New(kv jetstream.KeyValue, caFile string, log zerolog.Logger) *Issuer {
	return &Issuer{kv: kv, caFile: caFile, log: log}
}

// Provider is events.ProviderSelfSigned.
func (i *Issuer) Provider() string { return events.ProviderSelfSigned }

// RenewalInfo is nil: the local CA gives none.
func (i *Issuer) RenewalInfo(context.Context, *x509.Certificate, *x509.Certificate) (*issue.Renewal, error) {
	return nil, nil
}

// CA returns the local CA's certificate, loading it from the bucket or
// creating it there first, and writes it to the CA file.
func (i *Issuer) CA(ctx context.Context) (*x509.Certificate, error) {
	ca, err := i.authority(ctx)
	if err != nil {
		return nil, err
	}
	return ca.cert, nil
}

func (i *Issuer) authority(ctx context.Context) (*authority, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.ca != nil {
		return i.ca, nil
	}
	ca, created, err := i.loadOrCreate(ctx)
	if err != nil {
		return nil, err
	}
	if err := i.writeFile(ca.certPEM); err != nil {
		return nil, err
	}
	i.log.Info().Bool("created", created).Str("subject", ca.cert.Subject.CommonName).
		Time("not_after", ca.cert.NotAfter).Str("file", i.caFile).Msg("local CA ready")
	i.ca = ca
	return ca, nil
}

func (i *Issuer) loadOrCreate(ctx context.Context) (*authority, bool, error) {
	e, err := i.kv.Get(ctx, CAKey)
	if err == nil {
		ca, err := parse(e.Value())
		return ca, false, err
	}
	if !errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, false, fmt.Errorf("selfsigned: read CA: %w", err)
	}
	rec, err := newCA(time.Now())
	if err != nil {
		return nil, false, err
	}
	raw, err := json.Marshal(rec)
	if err != nil {
		return nil, false, fmt.Errorf("selfsigned: encode CA: %w", err)
	}
	if _, err := i.kv.Create(ctx, CAKey, raw); err != nil {
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return nil, false, fmt.Errorf("selfsigned: store CA: %w", err)
		}
		// Another replica stored one first: use it.
		e, err := i.kv.Get(ctx, CAKey)
		if err != nil {
			return nil, false, fmt.Errorf("selfsigned: read CA: %w", err)
		}
		ca, err := parse(e.Value())
		return ca, false, err
	}
	ca, err := parse(raw)
	return ca, true, err
}

func parse(raw []byte) (*authority, error) {
	var rec record
	if err := json.Unmarshal(raw, &rec); err != nil {
		return nil, fmt.Errorf("selfsigned: decode stored CA: %w", err)
	}
	cb, _ := pem.Decode([]byte(rec.CertPEM))
	if cb == nil {
		return nil, errors.New("selfsigned: stored CA certificate is not PEM")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("selfsigned: parse stored CA certificate: %w", err)
	}
	kb, _ := pem.Decode([]byte(rec.KeyPEM))
	if kb == nil {
		return nil, errors.New("selfsigned: stored CA key is not PEM")
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, errors.New("selfsigned: stored CA key does not parse")
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok || !key.PublicKey.Equal(cert.PublicKey) {
		return nil, errors.New("selfsigned: stored CA key does not match its certificate")
	}
	return &authority{cert: cert, certPEM: []byte(rec.CertPEM), key: key}, nil
}

// newCA creates a CA valid from now for CAValidity.
func newCA(now time.Time) (record, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return record{}, fmt.Errorf("selfsigned: CA key: %w", err)
	}
	serial, err := serialNumber()
	if err != nil {
		return record{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: CAName, Organization: []string{"Orchestry"}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(CAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return record{}, fmt.Errorf("selfsigned: create CA certificate: %w", err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return record{}, err
	}
	return record{CertPEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), KeyPEM: string(keyPEM)}, nil
}

// Obtain signs a new leaf for req.Domain with a fresh key.
func (i *Issuer) Obtain(ctx context.Context, req issue.Request) (issue.Issued, error) {
	ca, err := i.authority(ctx)
	if err != nil {
		return issue.Issued{}, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return issue.Issued{}, fmt.Errorf("selfsigned: leaf key: %w", err)
	}
	serial, err := serialNumber()
	if err != nil {
		return issue.Issued{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: req.Domain},
		DNSNames:              []string{req.Domain},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(-backdate).Add(LeafValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return issue.Issued{}, fmt.Errorf("selfsigned: sign %s: %w", req.Domain, err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return issue.Issued{}, err
	}
	chain := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), ca.certPEM...)
	return issue.Issued{ChainPEM: chain, KeyPEM: keyPEM}, nil
}

func encodeKey(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, errors.New("selfsigned: encode private key")
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func serialNumber() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("selfsigned: serial number: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}

// writeFile writes the CA certificate to the CA file (mode 0644) through
// a rename, so a reader never sees half of it.
func (i *Issuer) writeFile(certPEM []byte) error {
	if i.caFile == "" {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(i.caFile), 0o755); err != nil {
		return fmt.Errorf("selfsigned: CA file: %w", err)
	}
	tmp := i.caFile + ".tmp"
	if err := os.WriteFile(tmp, certPEM, 0o644); err != nil {
		return fmt.Errorf("selfsigned: CA file: %w", err)
	}
	if err := os.Rename(tmp, i.caFile); err != nil {
		return fmt.Errorf("selfsigned: CA file: %w", err)
	}
	return nil
}
