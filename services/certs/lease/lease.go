// Package lease is a leader lease on one key of a JetStream KV bucket
// whose entries expire (the bucket's TTL): a replica holds it by creating
// the key with its id and keeps it by updating the key at the revision it
// last wrote, every third of the TTL. A failed update means another
// replica may hold it: the holder stops leading at once. A standby keeps
// trying to create the key and takes over when the holder's last write
// lapses, or at once when the holder releases it on a clean stop.
package lease

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// Config names the lease and its holder.
type Config struct {
	// Key is the lease's key in the bucket.
	Key string
	// Holder is this replica's id, written as the key's value.
	Holder string
	// TTL is the bucket's TTL: how long the lease outlives its holder's
	// last renewal. It is renewed, and tried for, every TTL/3.
	TTL time.Duration
	// KeepOnStop leaves the key in place when Run ends, as a replica that
	// died would (tests); otherwise Run releases it for a quick takeover.
	KeepOnStop bool
}

// Lease campaigns for and holds one lease.
type Lease struct {
	kv   jetstream.KeyValue
	cfg  Config
	log  zerolog.Logger
	held atomic.Bool
}

// New returns the lease cfg.Key in kv, for holder cfg.Holder.
func New(kv jetstream.KeyValue, cfg Config, log zerolog.Logger) (*Lease, error) {
	if cfg.Key == "" || cfg.Holder == "" {
		return nil, errors.New("lease: key and holder are required")
	}
	if cfg.TTL <= 0 {
		return nil, fmt.Errorf("lease: TTL must be positive, not %s", cfg.TTL)
	}
	return &Lease{kv: kv, cfg: cfg, log: log.With().Str("lease", cfg.Key).Logger()}, nil
}

// Held reports whether this replica holds the lease now.
func (l *Lease) Held() bool { return l.held.Load() }

// interval is how often the lease is renewed or tried for.
func (l *Lease) interval() time.Duration { return l.cfg.TTL / 3 }

// Run tries for the lease until ctx ends. Each time it is won, lead runs
// with a context that is cancelled the moment the lease is lost (or ctx
// ends); Run waits for lead to return before trying again. Run returns
// nil when ctx ends.
func (l *Lease) Run(ctx context.Context, lead func(ctx context.Context)) error {
	t := time.NewTicker(l.interval())
	defer t.Stop()
	for {
		rev, err := l.acquire(ctx)
		switch {
		case err == nil:
			l.hold(ctx, rev, lead)
		case errors.Is(err, errHeldElsewhere) || ctx.Err() != nil:
		default:
			l.log.Warn().Err(err).Msg("lease: try")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

var errHeldElsewhere = errors.New("lease: held by another replica")

// acquire creates the key with this holder's id, or adopts it when it
// already names this holder (a restart under the same id).
func (l *Lease) acquire(ctx context.Context) (uint64, error) {
	actx, cancel := context.WithTimeout(ctx, l.interval())
	defer cancel()
	rev, err := l.kv.Create(actx, l.cfg.Key, []byte(l.cfg.Holder))
	if err == nil {
		return rev, nil
	}
	if !errors.Is(err, jetstream.ErrKeyExists) {
		return 0, fmt.Errorf("lease: create %s: %w", l.cfg.Key, err)
	}
	e, err := l.kv.Get(actx, l.cfg.Key)
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return 0, errHeldElsewhere // lapsed meanwhile: the next try creates it
		}
		return 0, fmt.Errorf("lease: read %s: %w", l.cfg.Key, err)
	}
	if string(e.Value()) != l.cfg.Holder {
		return 0, errHeldElsewhere
	}
	rev, err = l.kv.Update(actx, l.cfg.Key, []byte(l.cfg.Holder), e.Revision())
	if err != nil {
		return 0, errHeldElsewhere
	}
	return rev, nil
}

// hold runs lead while renewing the lease from revision rev; it returns
// once the lease is lost or ctx ends, after lead has returned.
func (l *Lease) hold(ctx context.Context, rev uint64, lead func(context.Context)) {
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	l.held.Store(true)
	l.log.Info().Str("holder", l.cfg.Holder).Msg("lease acquired")
	go func() {
		defer close(done)
		lead(lctx)
	}()
	t := time.NewTicker(l.interval())
	defer t.Stop()
	stop := func() {
		l.held.Store(false)
		cancel()
		<-done
	}
	for {
		select {
		case <-ctx.Done():
			stop()
			l.release(rev)
			return
		case <-t.C:
			uctx, ucancel := context.WithTimeout(ctx, l.interval())
			next, err := l.kv.Update(uctx, l.cfg.Key, []byte(l.cfg.Holder), rev)
			ucancel()
			if err != nil {
				if ctx.Err() != nil {
					continue // stopping: the next loop releases
				}
				stop()
				l.log.Warn().Err(err).Msg("lease lost")
				return
			}
			rev = next
		}
	}
}

// release deletes the key if it still holds this holder's last write.
func (l *Lease) release(rev uint64) {
	if l.cfg.KeepOnStop {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.interval())
	defer cancel()
	if err := l.kv.Delete(ctx, l.cfg.Key, jetstream.LastRevision(rev)); err != nil {
		l.log.Warn().Err(err).Msg("lease: release")
		return
	}
	l.log.Info().Msg("lease released")
}
