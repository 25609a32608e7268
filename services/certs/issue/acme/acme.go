// Package acme issues certificates from an ACME CA (Let's Encrypt, or any
// RFC 8555 server such as Pebble) through lego, answering HTTP-01
// challenges only. The account (key and registration) is kept per
// directory URL in the certs-issuer KV bucket and reused by whichever
// replica issues; External Account Binding is used when configured. It
// reads the CA's ACME Renewal Information (RFC 9773) when offered.
package acme

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	legoacme "github.com/go-acme/lego/v4/acme"
	"github.com/go-acme/lego/v4/acme/api"
	"github.com/go-acme/lego/v4/certcrypto"
	"github.com/go-acme/lego/v4/certificate"
	"github.com/go-acme/lego/v4/challenge"
	"github.com/go-acme/lego/v4/lego"
	"github.com/go-acme/lego/v4/registration"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/orchestry/orchestry/pkg/events"
	"github.com/orchestry/orchestry/services/certs/issue"
	"github.com/orchestry/orchestry/services/certs/schedule"
)

// Config is how to reach the ACME CA.
type Config struct {
	// Directory is the CA's directory URL.
	Directory string
	// Email is the account's contact; may be empty.
	Email string
	// EABKid and EABHMAC are the External Account Binding key id and
	// base64url HMAC key; used when both are set.
	EABKid, EABHMAC string
	// CABundle is a PEM file of extra roots trusted for the directory's
	// TLS (besides the system's); empty for none.
	CABundle string
	// Timeout bounds each HTTP request to the CA and the wait for a
	// certificate once the order is validated.
	Timeout time.Duration
	// Profile names the CA's certificate profile to order (ACME
	// profiles, e.g. Let's Encrypt's "shortlived"); empty for the CA's
	// default.
	Profile string
}

// Issuer obtains certificates from the ACME CA.
type Issuer struct {
	kv       jetstream.KeyValue
	cfg      Config
	provider challenge.Provider
	http     *http.Client
	log      zerolog.Logger

	mu   sync.Mutex
	acct *account
	rev  uint64
}

// account is the stored ACME account of one directory.
type account struct {
	Directory    string                 `json:"directory"`
	Email        string                 `json:"email,omitempty"`
	KeyPEM       string                 `json:"key_pem"`
	Registration *registration.Resource `json:"registration"`

	key crypto.PrivateKey
}

func (a *account) GetEmail() string                        { return a.Email }
func (a *account) GetRegistration() *registration.Resource { return a.Registration }
func (a *account) GetPrivateKey() crypto.PrivateKey        { return a.key }

// AccountKey is the certs-issuer key of the account for directory.
func AccountKey(directory string) string {
	sum := sha256.Sum256([]byte(directory))
	return "acme-account." + hex.EncodeToString(sum[:16])
}

// New returns the issuer whose account is kept in kv
// (events.BucketCertsIssuer) and whose HTTP-01 answers go through
// provider. It reads the CA bundle now, so a bad one fails at start.
func New(kv jetstream.KeyValue, provider challenge.Provider, cfg Config, log zerolog.Logger) (*Issuer, error) {
	if cfg.Directory == "" {
		return nil, errors.New("acme: a directory URL is required")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if (cfg.EABKid == "") != (cfg.EABHMAC == "") {
		return nil, errors.New("acme: ORCHESTRY_ACME_EAB_KID and ORCHESTRY_ACME_EAB_HMAC go together")
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if cfg.CABundle != "" {
		b, err := os.ReadFile(cfg.CABundle)
		if err != nil {
			return nil, fmt.Errorf("acme: CA bundle: %w", err)
		}
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("acme: CA bundle %s holds no PEM certificate", cfg.CABundle)
		}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	tr.ResponseHeaderTimeout = cfg.Timeout
	return &Issuer{
		kv: kv, cfg: cfg, provider: provider, log: log,
		http: &http.Client{Timeout: cfg.Timeout, Transport: tr},
	}, nil
}

// Provider is events.ProviderACME.
func (i *Issuer) Provider() string { return events.ProviderACME }

// Obtain orders a certificate for req.Domain and answers its HTTP-01
// challenge. An account the CA no longer knows (a reset test CA) is
// registered anew once.
func (i *Issuer) Obtain(ctx context.Context, req issue.Request) (issue.Issued, error) {
	if strings.HasPrefix(req.Domain, "*.") {
		return issue.Issued{}, fmt.Errorf("acme: %s: a wildcard needs the DNS-01 challenge, and only HTTP-01 is supported", req.Domain)
	}
	for attempt := 0; ; attempt++ {
		res, err := i.obtain(ctx, req)
		if err == nil {
			return issue.Issued{ChainPEM: res.Certificate, KeyPEM: res.PrivateKey}, nil
		}
		var pd *legoacme.ProblemDetails
		if attempt == 0 && errors.As(err, &pd) && pd.Type == "urn:ietf:params:acme:error:accountDoesNotExist" {
			i.log.Warn().Str("directory", i.cfg.Directory).Msg("ACME account unknown to the CA: registering a new one")
			i.forget(ctx)
			continue
		}
		return issue.Issued{}, fmt.Errorf("acme: %s: %w", req.Domain, err)
	}
}

func (i *Issuer) obtain(ctx context.Context, req issue.Request) (*certificate.Resource, error) {
	client, err := i.client(ctx)
	if err != nil {
		return nil, err
	}
	return call(ctx, func() (*certificate.Resource, error) {
		return client.Certificate.Obtain(certificate.ObtainRequest{
			Domains:        []string{req.Domain},
			Bundle:         true,
			Profile:        i.cfg.Profile,
			ReplacesCertID: req.Replaces,
		})
	})
}

// RenewalInfo asks the CA's renewalInfo endpoint about leaf; nil when the
// CA has none.
func (i *Issuer) RenewalInfo(ctx context.Context, leaf, _ *x509.Certificate) (*issue.Renewal, error) {
	client, err := i.client(ctx)
	if err != nil {
		return nil, err
	}
	ri, err := call(ctx, func() (*certificate.RenewalInfoResponse, error) {
		return client.Certificate.GetRenewalInfo(certificate.RenewalInfoRequest{Cert: leaf})
	})
	if errors.Is(err, api.ErrNoARI) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("acme: renewal info: %w", err)
	}
	id, err := certificate.MakeARICertID(leaf)
	if err != nil {
		return nil, fmt.Errorf("acme: renewal info: %w", err)
	}
	return &issue.Renewal{
		Window:     schedule.Window{Start: ri.SuggestedWindow.Start, End: ri.SuggestedWindow.End},
		RetryAfter: ri.RetryAfter,
		CertID:     id,
	}, nil
}

// client is a lego client for the stored account (registered first when
// there is none). Each call gets its own client, so orders for different
// domains run side by side.
func (i *Issuer) client(ctx context.Context) (*lego.Client, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.acct == nil {
		if err := i.loadOrRegister(ctx); err != nil {
			return nil, err
		}
	}
	return i.newClient(i.acct)
}

func (i *Issuer) newClient(a *account) (*lego.Client, error) {
	cfg := lego.NewConfig(a)
	cfg.CADirURL = i.cfg.Directory
	cfg.HTTPClient = i.http
	cfg.UserAgent = "orchestry-certs"
	cfg.Certificate.KeyType = certcrypto.EC256
	cfg.Certificate.Timeout = i.cfg.Timeout
	c, err := lego.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("acme: directory %s: %w", i.cfg.Directory, err)
	}
	if err := c.Challenge.SetHTTP01Provider(i.provider); err != nil {
		return nil, fmt.Errorf("acme: HTTP-01 provider: %w", err)
	}
	return c, nil
}

// loadOrRegister reads the directory's account from the bucket, or
// registers one and stores it. Called with mu held.
func (i *Issuer) loadOrRegister(ctx context.Context) error {
	key := AccountKey(i.cfg.Directory)
	e, err := i.kv.Get(ctx, key)
	switch {
	case err == nil:
		a, err := decodeAccount(e.Value())
		if err != nil {
			return err
		}
		i.acct, i.rev = a, e.Revision()
		return nil
	case !errors.Is(err, jetstream.ErrKeyNotFound):
		return fmt.Errorf("acme: read account: %w", err)
	}
	pk, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("acme: account key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(pk)
	if err != nil {
		return errors.New("acme: encode account key")
	}
	a := &account{
		Directory: i.cfg.Directory, Email: i.cfg.Email,
		KeyPEM: string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		key:    pk,
	}
	c, err := i.newClient(a)
	if err != nil {
		return err
	}
	reg, err := call(ctx, func() (*registration.Resource, error) {
		if i.cfg.EABKid != "" {
			return c.Registration.RegisterWithExternalAccountBinding(registration.RegisterEABOptions{
				TermsOfServiceAgreed: true, Kid: i.cfg.EABKid, HmacEncoded: i.cfg.EABHMAC,
			})
		}
		return c.Registration.Register(registration.RegisterOptions{TermsOfServiceAgreed: true})
	})
	if err != nil {
		return fmt.Errorf("acme: register account at %s: %w", i.cfg.Directory, err)
	}
	a.Registration = reg
	raw, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("acme: encode account: %w", err)
	}
	rev, err := i.kv.Put(ctx, key, raw)
	if err != nil {
		return fmt.Errorf("acme: store account: %w", err)
	}
	i.log.Info().Str("directory", i.cfg.Directory).Str("account", reg.URI).Msg("ACME account registered")
	i.acct, i.rev = a, rev
	return nil
}

// forget drops the account the CA no longer knows, here and in the bucket
// (unless another replica has replaced it meanwhile).
func (i *Issuer) forget(ctx context.Context) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.acct == nil {
		return
	}
	if err := i.kv.Delete(ctx, AccountKey(i.cfg.Directory), jetstream.LastRevision(i.rev)); err != nil {
		i.log.Warn().Err(err).Msg("acme: drop unknown account")
	}
	i.acct, i.rev = nil, 0
}

func decodeAccount(raw []byte) (*account, error) {
	var a account
	if err := json.Unmarshal(raw, &a); err != nil {
		return nil, fmt.Errorf("acme: decode stored account: %w", err)
	}
	b, _ := pem.Decode([]byte(a.KeyPEM))
	if b == nil {
		return nil, errors.New("acme: stored account key is not PEM")
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return nil, errors.New("acme: stored account key does not parse")
	}
	if a.Registration == nil || a.Registration.URI == "" {
		return nil, errors.New("acme: stored account has no registration")
	}
	a.key = k
	return &a, nil
}

// call runs f, which cannot be cancelled, and returns its result or ctx's
// error if ctx ends first (f's late result is then dropped).
func call[T any](ctx context.Context, f func() (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		v, err := f()
		ch <- result{v, err}
	}()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}
