// Package certsync keeps this NGINX node's certificate directory in step
// with the certs bucket: every certificate the certs service stores is
// written as <domain>.crt and <domain>.key (mode 0600), and the renderer
// is told, so that NGINX reloads with it. A bundle whose key does not
// match its certificate is refused and the files on disk stay.
package certsync

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/orchestry/orchestry/pkg/events"
	"github.com/orchestry/orchestry/services/renderer/tlsfiles"
)

// Sync writes bundles from the certs bucket into a directory.
type Sync struct {
	js       jetstream.JetStream
	dir      string
	changed  func()
	log      zerolog.Logger
	caughtUp chan struct{}
}

// New returns a Sync writing into dir and calling changed after each
// pair it writes.
func New(js jetstream.JetStream, dir string, changed func(), log zerolog.Logger) *Sync {
	return &Sync{js: js, dir: dir, changed: changed, log: log.With().Str("component", "certsync").Logger(),
		caughtUp: make(chan struct{})}
}

// CaughtUp is closed once every bundle stored when Run started is on disk.
func (s *Sync) CaughtUp() <-chan struct{} { return s.caughtUp }

// Run watches the bucket until ctx ends.
func (s *Sync) Run(ctx context.Context) error {
	kv, err := s.js.KeyValue(ctx, events.BucketCerts)
	if err != nil {
		return fmt.Errorf("certsync: bucket %s: %w", events.BucketCerts, err)
	}
	w, err := kv.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("certsync: watch %s: %w", events.BucketCerts, err)
	}
	defer func() { _ = w.Stop() }()
	caught := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-w.Updates():
			if !ok {
				return fmt.Errorf("certsync: watch %s ended", events.BucketCerts)
			}
			if e == nil {
				if !caught {
					caught = true
					close(s.caughtUp)
				}
				continue
			}
			if e.Operation() != jetstream.KeyValuePut {
				continue // a removed certificate keeps its files for apps still using them
			}
			if err := s.Write(e.Key(), e.Value()); err != nil {
				s.log.Error().Err(err).Str("key", e.Key()).Msg("certificate not written")
			}
		}
	}
}

// Write checks the bundle stored under key and writes its pair, calling
// changed when a file changed.
func (s *Sync) Write(key string, value []byte) error {
	var b events.CertBundle
	if err := json.Unmarshal(value, &b); err != nil {
		return fmt.Errorf("bundle %s: %w", key, err)
	}
	if err := b.Validate(); err != nil {
		return fmt.Errorf("bundle %s: %w", key, err)
	}
	if events.CertKey(b.Domain) != key {
		return fmt.Errorf("bundle %s names domain %s", key, b.Domain)
	}
	if _, err := tls.X509KeyPair([]byte(b.CertPEM), []byte(b.KeyPEM)); err != nil {
		return fmt.Errorf("bundle %s: certificate and key: %w", key, err)
	}
	changed, err := tlsfiles.WritePair(s.dir, b.Domain, []byte(b.CertPEM), []byte(b.KeyPEM))
	if err != nil {
		return err
	}
	if changed {
		s.log.Info().Str("domain", b.Domain).Str("serial", b.Serial).Time("not_after", b.NotAfter).
			Str("provider", b.Provider).Msg("certificate written")
		s.changed()
	}
	return nil
}
