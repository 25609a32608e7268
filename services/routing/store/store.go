// Package store keeps routing's source of truth, one events.AppRecord per
// app in the JetStream KV bucket events.BucketApps. Every change is a
// compare-and-set on the entry's last revision, retried a bounded number of
// times on conflict, so concurrent writers never lose an update.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/orchestry/orchestry/pkg/events"
	"github.com/orchestry/orchestry/services/routing/spec"
)

// Errors returned by Store; callers map them to HTTP statuses or rejections.
var (
	// ErrNotFound: the app does not exist.
	ErrNotFound = errors.New("app not found")
	// ErrInstanceNotFound: the app has no instance with that id.
	ErrInstanceNotFound = errors.New("instance not found")
	// ErrRuleNotFound: the app has no routing rule with that id.
	ErrRuleNotFound = errors.New("routing rule not found")
	// ErrAddressTaken: another app already serves the same port and domain.
	ErrAddressTaken = errors.New("external port and domain already used by another app")
	// ErrContention: the compare-and-set kept failing.
	ErrContention = errors.New("too many concurrent changes")
)

// maxAttempts bounds the compare-and-set retries of one change.
const maxAttempts = 64

// Entry is one stored app with the KV revision it was read at.
type Entry struct {
	Record   events.AppRecord
	Revision uint64
}

// Store reads and changes app records.
type Store struct {
	kv jetstream.KeyValue
}

// Open binds to the apps bucket, which must exist (see events.Provision).
func Open(ctx context.Context, js jetstream.JetStream) (*Store, error) {
	kv, err := js.KeyValue(ctx, events.BucketApps)
	if err != nil {
		return nil, fmt.Errorf("store: open bucket %s: %w", events.BucketApps, err)
	}
	return &Store{kv: kv}, nil
}

// KV returns the underlying bucket (for watchers).
func (s *Store) KV() jetstream.KeyValue { return s.kv }

// Get returns the app called name, or ErrNotFound.
func (s *Store) Get(ctx context.Context, name string) (Entry, error) {
	if events.CheckName(name) != nil {
		return Entry{}, fmt.Errorf("store %s: %w", name, ErrNotFound)
	}
	e, err := s.kv.Get(ctx, name)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return Entry{}, fmt.Errorf("store %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return Entry{}, fmt.Errorf("store %s: get: %w", name, err)
	}
	var rec events.AppRecord
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return Entry{}, fmt.Errorf("store %s: decode revision %d: %w", name, e.Revision(), err)
	}
	return Entry{Record: rec, Revision: e.Revision()}, nil
}

// List returns every app, sorted by name.
func (s *Store) List(ctx context.Context) ([]Entry, error) {
	lister, err := s.kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: list keys: %w", err)
	}
	defer func() { _ = lister.Stop() }() // already stopped once drained
	var names []string
	for k := range lister.Keys() {
		names = append(names, k)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("store: list keys: %w", err)
	}
	sort.Strings(names)
	out := make([]Entry, 0, len(names))
	for _, n := range names {
		e, err := s.Get(ctx, n)
		if errors.Is(err, ErrNotFound) {
			continue // deleted since listed
		}
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// PutApp creates the app or replaces its declared spec, keeping its
// instances. It refuses an app whose resolved (external_port, domain) is
// served by another app. created reports whether the app was new.
func (s *Store) PutApp(ctx context.Context, app events.App) (rev uint64, created bool, err error) {
	name := app.Metadata.Name
	for attempt := 0; attempt < maxAttempts; attempt++ {
		if err := s.checkAddress(ctx, app); err != nil {
			return 0, false, err
		}
		cur, err := s.Get(ctx, name)
		switch {
		case errors.Is(err, ErrNotFound):
			rev, err = s.kv.Create(ctx, name, encode(events.AppRecord{App: app}))
			if errors.Is(err, jetstream.ErrKeyExists) {
				backoff(ctx, attempt)
				continue
			}
			if err != nil {
				return 0, false, fmt.Errorf("store %s: create: %w", name, err)
			}
			return rev, true, nil
		case err != nil:
			return 0, false, err
		}
		rec := cur.Record
		rec.App = app
		if !spec.ChosenFromTraffic(app) {
			rec.Auto = nil // a later auto starts afresh
		}
		rev, err = s.kv.Update(ctx, name, encode(rec), cur.Revision)
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			backoff(ctx, attempt)
			continue
		}
		if err != nil {
			return 0, false, fmt.Errorf("store %s: update: %w", name, err)
		}
		return rev, false, nil
	}
	return 0, false, fmt.Errorf("store %s: %w", name, ErrContention)
}

// checkAddress refuses app when another app resolves to the same external
// port and domain. (Two simultaneous creations of different apps with the
// same address are not serialised; the renderer must still tolerate it.)
func (s *Store) checkAddress(ctx context.Context, app events.App) error {
	want := spec.Resolve(app).Spec.Networking
	all, err := s.List(ctx)
	if err != nil {
		return err
	}
	for _, e := range all {
		other := e.Record.App
		if other.Metadata.Name == app.Metadata.Name {
			continue
		}
		n := spec.Resolve(other).Spec.Networking
		if n.ExternalPort == want.ExternalPort && n.Domain == want.Domain {
			return fmt.Errorf("store %s: %w (%s on port %d)", app.Metadata.Name, ErrAddressTaken, other.Metadata.Name, n.ExternalPort)
		}
	}
	return nil
}

// DeleteApp removes the app and its instances, or returns ErrNotFound.
func (s *Store) DeleteApp(ctx context.Context, name string) error {
	for attempt := 0; attempt < maxAttempts; attempt++ {
		cur, err := s.Get(ctx, name)
		if err != nil {
			return err
		}
		err = s.kv.Delete(ctx, name, jetstream.LastRevision(cur.Revision))
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			backoff(ctx, attempt)
			continue
		}
		if err != nil {
			return fmt.Errorf("store %s: delete: %w", name, err)
		}
		return nil
	}
	return fmt.Errorf("store %s: %w", name, ErrContention)
}

// PutInstance adds the instance to the app, or replaces the one with the
// same id. created reports whether the id was new.
func (s *Store) PutInstance(ctx context.Context, app string, in events.Instance) (rev uint64, created bool, err error) {
	rev, err = s.mutate(ctx, app, func(rec *events.AppRecord) error {
		i := slices.IndexFunc(rec.Instances, func(x events.Instance) bool { return x.ID == in.ID })
		created = i < 0
		if created {
			rec.Instances = append(rec.Instances, in)
		} else {
			rec.Instances[i] = in
		}
		return nil
	})
	return rev, created, err
}

// RemoveInstance removes the instance with id from the app, or returns
// ErrNotFound or ErrInstanceNotFound.
func (s *Store) RemoveInstance(ctx context.Context, app, id string) (uint64, error) {
	return s.mutate(ctx, app, func(rec *events.AppRecord) error {
		i := slices.IndexFunc(rec.Instances, func(x events.Instance) bool { return x.ID == id })
		if i < 0 {
			return fmt.Errorf("store %s: instance %s: %w", app, id, ErrInstanceNotFound)
		}
		rec.Instances = slices.Delete(rec.Instances, i, i+1)
		return nil
	})
}

// UpdateInstance applies fn to the instance id of app and writes the
// record back when fn reports a change; nothing is written otherwise.
func (s *Store) UpdateInstance(ctx context.Context, app, id string, fn func(*events.Instance) bool) (changed bool, err error) {
	_, err = s.mutate(ctx, app, func(rec *events.AppRecord) error {
		i := slices.IndexFunc(rec.Instances, func(x events.Instance) bool { return x.ID == id })
		if i < 0 {
			return fmt.Errorf("store %s: instance %s: %w", app, id, ErrInstanceNotFound)
		}
		in := rec.Instances[i]
		changed = fn(&in)
		if !changed {
			return errUnchanged
		}
		rec.Instances = slices.Clone(rec.Instances)
		rec.Instances[i] = in
		return nil
	})
	if errors.Is(err, errUnchanged) {
		return false, nil
	}
	return changed, err
}

// UpdateAuto sets the app's auto choice to what choose returns for the
// current record, writing only when choose reports a change.
func (s *Store) UpdateAuto(ctx context.Context, app string, choose func(events.AppRecord) (*events.AutoChoice, bool)) (changed bool, err error) {
	_, err = s.mutate(ctx, app, func(rec *events.AppRecord) error {
		c, ok := choose(*rec)
		if !ok {
			return errUnchanged
		}
		rec.Auto = c
		changed = true
		return nil
	})
	if errors.Is(err, errUnchanged) {
		return false, nil
	}
	return changed, err
}

// errUnchanged stops a mutate without writing.
var errUnchanged = errors.New("unchanged")

// PutRule adds the routing rule to the app, or replaces the one with the
// same id, after checking the app with its new rules: an invalid result is
// returned as the events.ValidationError and nothing is written. created
// reports whether the id was new.
func (s *Store) PutRule(ctx context.Context, app string, rule events.Rule) (rev uint64, created bool, err error) {
	rev, err = s.mutate(ctx, app, func(rec *events.AppRecord) error {
		rules := slices.Clone(rec.App.Spec.Rules)
		i := slices.IndexFunc(rules, func(x events.Rule) bool { return x.ID == rule.ID })
		created = i < 0
		if created {
			rules = append(rules, rule)
		} else {
			rules[i] = rule
		}
		next := rec.App
		next.Spec.Rules = rules
		if err := next.Validate(); err != nil {
			return err
		}
		rec.App = next
		return nil
	})
	return rev, created, err
}

// RemoveRule removes the routing rule with id from the app, or returns
// ErrNotFound or ErrRuleNotFound.
func (s *Store) RemoveRule(ctx context.Context, app, id string) (uint64, error) {
	return s.mutate(ctx, app, func(rec *events.AppRecord) error {
		i := slices.IndexFunc(rec.App.Spec.Rules, func(x events.Rule) bool { return x.ID == id })
		if i < 0 {
			return fmt.Errorf("store %s: rule %s: %w", app, id, ErrRuleNotFound)
		}
		rec.App.Spec.Rules = slices.Delete(slices.Clone(rec.App.Spec.Rules), i, i+1)
		return nil
	})
}

// mutate applies fn to the current record of app and writes it back with a
// compare-and-set, re-reading and re-applying on conflict.
func (s *Store) mutate(ctx context.Context, app string, fn func(*events.AppRecord) error) (uint64, error) {
	for attempt := 0; attempt < maxAttempts; attempt++ {
		cur, err := s.Get(ctx, app)
		if err != nil {
			return 0, err
		}
		rec := cur.Record
		if err := fn(&rec); err != nil {
			return 0, err
		}
		rev, err := s.kv.Update(ctx, app, encode(rec), cur.Revision)
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			backoff(ctx, attempt)
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("store %s: update: %w", app, err)
		}
		return rev, nil
	}
	return 0, fmt.Errorf("store %s: %w", app, ErrContention)
}

// encode marshals a record; AppRecord holds only JSON-safe values.
func encode(rec events.AppRecord) []byte {
	b, err := json.Marshal(rec)
	if err != nil {
		panic(fmt.Sprintf("store: encode record: %v", err)) // unreachable: plain data
	}
	return b
}

// backoff waits a short, growing, jittered time before a retry.
func backoff(ctx context.Context, attempt int) {
	d := time.Duration(1+min(attempt, 10)) * time.Millisecond
	d += rand.N(d)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
