// Package challenge answers ACME HTTP-01 challenges through the
// acme-challenges KV bucket: Provider (a lego challenge.Provider) puts each
// token's key authorization there while the issuer's order is validated,
// and Handler serves GET /.well-known/acme-challenge/{token} from it, so
// every certs replica answers, whichever one issues. NGINX proxies port
// 80's challenge path to that server.
package challenge

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// Path is the URL path prefix of HTTP-01 challenges.
const Path = "/.well-known/acme-challenge/"

// tokenRE is an ACME token: base64url characters (RFC 8555 section 8.3),
// which are also valid KV keys.
var tokenRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,256}$`)

// ValidToken reports whether token can be an ACME token.
func ValidToken(token string) bool { return tokenRE.MatchString(token) }

// Provider puts and deletes HTTP-01 answers in the acme-challenges bucket.
type Provider struct {
	kv      jetstream.KeyValue
	timeout time.Duration
}

// NewProvider returns the provider over kv, each KV call bounded by
// timeout.
func NewProvider(kv jetstream.KeyValue, timeout time.Duration) *Provider {
	return &Provider{kv: kv, timeout: timeout}
}

// Present stores the key authorization of token for domain.
func (p *Provider) Present(domain, token, keyAuth string) error {
	if !ValidToken(token) {
		return fmt.Errorf("challenge: %s: token is not base64url", domain)
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.timeout)
	defer cancel()
	if _, err := p.kv.Put(ctx, token, []byte(keyAuth)); err != nil {
		return fmt.Errorf("challenge: %s: store token: %w", domain, err)
	}
	return nil
}

// CleanUp deletes token's answer.
func (p *Provider) CleanUp(domain, token, _ string) error {
	if !ValidToken(token) {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.timeout)
	defer cancel()
	if err := p.kv.Delete(ctx, token); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("challenge: %s: delete token: %w", domain, err)
	}
	return nil
}

// Handler answers GET /.well-known/acme-challenge/{token} with the token's
// key authorization from kv, 404 for an unknown token.
func Handler(kv jetstream.KeyValue, log zerolog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+Path+"{token}", func(w http.ResponseWriter, r *http.Request) {
		token := r.PathValue("token")
		if !ValidToken(token) {
			http.NotFound(w, r)
			return
		}
		e, err := kv.Get(r.Context(), token)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			http.NotFound(w, r)
			return
		}
		if err != nil {
			log.Warn().Err(err).Str("token", token).Msg("challenge lookup")
			http.Error(w, "challenge store unavailable", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(e.Value())
		log.Debug().Str("token", token).Str("remote", r.RemoteAddr).Msg("challenge answered")
	})
	return mux
}
