package health

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/orchestry/orchestry/pkg/events"
)

func decodeID(s string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	return string(b), err
}

// watchStates loads every stored health state into the tracker, then keeps
// following the bucket in the background so that states written by other
// replicas (and deletions) reach this replica's tracker before it takes a
// target over. done is closed when the watch has stopped.
func (s *Service) watchStates(ctx context.Context) (done <-chan struct{}, err error) {
	w, err := s.kv.WatchAll(ctx)
	if err != nil {
		return nil, fmt.Errorf("health: watch %s: %w", events.BucketHealth, err)
	}
	loaded := 0
	for initial := true; initial; {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return nil, errors.New("health: health state watch closed")
			}
			if e == nil {
				initial = false
				continue
			}
			if s.applyEntry(e) {
				loaded++
			}
		case <-ctx.Done():
			_ = w.Stop()
			return nil, ctx.Err()
		}
	}
	s.log.Info().Int("states", loaded).Msg("health states loaded")
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		defer func() { _ = w.Stop() }()
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-w.Updates():
				if !ok {
					return
				}
				if e != nil {
					s.applyEntry(e)
				}
			}
		}
	}()
	return ch, nil
}

// applyEntry takes one bucket entry into the tracker and reports whether
// it held a state.
func (s *Service) applyEntry(e jetstream.KeyValueEntry) bool {
	if e.Operation() != jetstream.KeyValuePut {
		s.tracker.Forget(e.Key())
		return false
	}
	var st events.HealthState
	if err := json.Unmarshal(e.Value(), &st); err != nil {
		s.log.Warn().Err(err).Str("key", e.Key()).Msg("unreadable health state in KV; ignored")
		return false
	}
	st.Revision = e.Revision()
	s.tracker.Adopt(e.Key(), st, false)
	return true
}

// commit stores st at key with compare-and-set on the revision last read,
// then publishes it with the new KV revision. When another replica wrote
// first, it takes the stored state and publishes nothing: the other writer
// published its own.
func (s *Service) commit(ctx context.Context, key string, st events.HealthState) {
	log := s.log.With().Str("app", st.App).Str("instance", st.InstanceID).Str("state", st.State).Logger()
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	rev, err := s.store(wctx, key, st)
	if errors.Is(err, errConflict) {
		log.Info().Msg("health state written by another replica; taking it")
		s.resync(wctx, key)
		return
	}
	if err != nil {
		log.Error().Err(err).Msg("store health state; will retry on the next probe")
		return
	}
	st.Revision = rev
	s.tracker.Commit(key, st)
	env, err := events.NewEnvelope(s.source, events.InstanceHealth(st.App), st)
	if err != nil {
		log.Error().Err(err).Msg("health state envelope")
		return
	}
	// A fixed id per stored revision: a retried publish is dropped by
	// JetStream's de-duplication instead of repeating the transition.
	env.ID = fmt.Sprintf("health-%s-%d", key, rev)
	for attempt := 1; ; attempt++ {
		_, err = events.PublishEnvelope(wctx, s.js, events.InstanceHealth(st.App), env)
		if err == nil || attempt == 3 || wctx.Err() != nil {
			break
		}
		time.Sleep(time.Duration(attempt) * 100 * time.Millisecond)
	}
	if err != nil {
		log.Error().Err(err).Uint64("revision", rev).Msg("publish instance.health")
		return
	}
	log.Info().Uint64("revision", rev).Int("failures", st.ConsecutiveFailures).
		Int("successes", st.ConsecutiveSuccesses).Str("last_error", st.LastError).Msg("health transition")
}

// store writes st at key: Create when nothing was stored (revision 0),
// else Update against the revision last read.
func (s *Service) store(ctx context.Context, key string, st events.HealthState) (uint64, error) {
	prev := st.Revision
	st.Revision = 0 // the KV revision is the entry's own
	b, err := json.Marshal(st)
	if err != nil {
		return 0, fmt.Errorf("encode health state: %w", err)
	}
	var rev uint64
	if prev == 0 {
		rev, err = s.kv.Create(ctx, key, b)
	} else {
		rev, err = s.kv.Update(ctx, key, b, prev)
	}
	if errors.Is(err, jetstream.ErrKeyExists) || isWrongLastSequence(err) {
		return 0, errConflict
	}
	if err != nil {
		return 0, fmt.Errorf("kv write %s: %w", key, err)
	}
	return rev, nil
}

func isWrongLastSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence
}

// resync re-reads the stored state at key into the tracker.
func (s *Service) resync(ctx context.Context, key string) {
	e, err := s.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		s.tracker.Forget(key)
		return
	}
	if err != nil {
		s.log.Error().Err(err).Str("key", key).Msg("re-read health state")
		return
	}
	var st events.HealthState
	if err := json.Unmarshal(e.Value(), &st); err != nil {
		s.log.Error().Err(err).Str("key", key).Msg("unreadable health state in KV")
		return
	}
	st.Revision = e.Revision()
	s.tracker.Adopt(key, st, true)
}

// deleteState removes the stored state of an instance that is gone. Every
// replica sees the removal; the delete is conditional on the revision
// read, so it is done once and a newer write is not lost.
func (s *Service) deleteState(ctx context.Context, key string) {
	s.tracker.Forget(key)
	e, err := s.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return
	}
	if err != nil {
		s.log.Error().Err(err).Str("key", key).Msg("read health state to delete")
		return
	}
	err = s.kv.Delete(ctx, key, jetstream.LastRevision(e.Revision()))
	if err != nil && !isWrongLastSequence(err) {
		s.log.Error().Err(err).Str("key", key).Msg("delete health state")
		return
	}
	if err == nil {
		s.log.Info().Str("key", key).Msg("health state deleted")
	}
}
