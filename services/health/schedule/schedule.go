// Package schedule runs periodic work for a changing set of targets on a
// fixed pool of workers: a timer heap orders the targets by their next due
// time, each target runs every period (with jitter and a random initial
// phase), and a target whose previous run is still going when it is due
// again is skipped rather than queued. When every worker is busy, due
// targets wait for one (they run late, not a period later).
package schedule

import (
	"container/heap"
	"context"
	"math/rand/v2"
	"sync"
	"time"
)

// Jitter is the fraction of the period by which each interval varies.
const Jitter = 0.1

// Spec is one target's schedule and payload.
type Spec[T any] struct {
	// Key identifies the target.
	Key string
	// Period is the time between runs.
	Period time.Duration
	// InitialDelay is the wait before the first run of a new target.
	InitialDelay time.Duration
	// Spread adds a random part of Period to the first run's wait, so
	// that many targets added at once (a replica starting) do not all
	// run together. A target added alone (an instance registered) goes
	// without it, and is first run right after InitialDelay.
	Spread bool
	// Value is handed to the work function.
	Value T
}

// Work runs once for a due target owned by this replica.
type Work[T any] func(ctx context.Context, key string, v T)

// Scheduler runs Work for every target when it is due.
type Scheduler[T any] struct {
	workers int
	work    Work[T]
	owns    func(key string) bool

	mu      sync.Mutex
	targets map[string]*item[T]
	h       itemHeap[T]
	wake    chan struct{}
	skipped uint64
	// full: dispatch found the queue full and waits for a worker.
	full bool
}

type item[T any] struct {
	spec    Spec[T]
	next    time.Time
	running bool
	index   int
}

// New returns a Scheduler with workers workers that calls work for each
// due target for which owns returns true (nil owns: every target).
func New[T any](workers int, work Work[T], owns func(key string) bool) *Scheduler[T] {
	if workers < 1 {
		workers = 1
	}
	if owns == nil {
		owns = func(string) bool { return true }
	}
	return &Scheduler[T]{
		workers: workers, work: work, owns: owns,
		targets: map[string]*item[T]{}, wake: make(chan struct{}, 1),
	}
}

// Set adds the target, or updates its spec (keeping its place in time
// unless the period changed).
func (s *Scheduler[T]) Set(spec Spec[T]) {
	if spec.Period <= 0 {
		spec.Period = time.Second
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if it, ok := s.targets[spec.Key]; ok {
		old := it.spec.Period
		it.spec = spec
		if old != spec.Period {
			it.next = time.Now().Add(jittered(spec.Period))
			heap.Fix(&s.h, it.index)
			s.poke()
		}
		return
	}
	var phase time.Duration
	if spec.Spread {
		phase = time.Duration(rand.Float64() * float64(spec.Period))
	}
	it := &item[T]{spec: spec, next: time.Now().Add(spec.InitialDelay + phase)}
	s.targets[spec.Key] = it
	heap.Push(&s.h, it)
	s.poke()
}

// Remove stops running the target at key.
func (s *Scheduler[T]) Remove(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if it, ok := s.targets[key]; ok {
		heap.Remove(&s.h, it.index)
		delete(s.targets, key)
	}
}

// Has reports whether the target at key is scheduled.
func (s *Scheduler[T]) Has(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.targets[key]
	return ok
}

// Keys returns the key of every scheduled target.
func (s *Scheduler[T]) Keys() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := make([]string, 0, len(s.targets))
	for k := range s.targets {
		keys = append(keys, k)
	}
	return keys
}

// Skipped returns how many due runs were skipped because the previous run
// of the target was still going.
func (s *Scheduler[T]) Skipped() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.skipped
}

func (s *Scheduler[T]) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

type job[T any] struct {
	key string
	v   T
}

// Run dispatches due targets to the workers until ctx ends, then waits for
// running work to return.
func (s *Scheduler[T]) Run(ctx context.Context) {
	queue := make(chan job[T], s.workers)
	var wg sync.WaitGroup
	for range s.workers {
		wg.Go(func() {
			for j := range queue {
				s.work(ctx, j.key, j.v)
				s.mu.Lock()
				if it, ok := s.targets[j.key]; ok {
					it.running = false
				}
				if s.full {
					s.full = false
					s.poke()
				}
				s.mu.Unlock()
			}
		})
	}
	defer wg.Wait()
	defer close(queue)

	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		wait := s.dispatch(queue)
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-s.wake:
		}
	}
}

// dispatch hands every due target to the queue and returns the wait until
// the next one is due. When the queue is full (every worker busy and as
// many runs waiting), the due targets stay due and are handed out as
// workers free up: late rather than skipped for a whole period.
func (s *Scheduler[T]) dispatch(queue chan<- job[T]) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.h) > 0 {
		it := s.h[0]
		now := time.Now()
		if wait := it.next.Sub(now); wait > 0 {
			return wait
		}
		if !it.running && s.owns(it.spec.Key) {
			select {
			case queue <- job[T]{key: it.spec.Key, v: it.spec.Value}:
				it.running = true
			default:
				s.full = true // a finishing worker wakes the dispatcher
				return time.Hour
			}
		} else if it.running {
			s.skipped++
		}
		it.next = it.next.Add(jittered(it.spec.Period))
		if it.next.Before(now) { // fell behind: do not catch up in a burst
			it.next = now.Add(jittered(it.spec.Period))
		}
		heap.Fix(&s.h, 0)
	}
	return time.Hour
}

// jittered is p varied by ±Jitter.
func jittered(p time.Duration) time.Duration {
	return time.Duration(float64(p) * (1 + Jitter*(2*rand.Float64()-1)))
}

// itemHeap orders items by next due time.
type itemHeap[T any] []*item[T]

func (h itemHeap[T]) Len() int           { return len(h) }
func (h itemHeap[T]) Less(i, j int) bool { return h[i].next.Before(h[j].next) }
func (h itemHeap[T]) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}
func (h *itemHeap[T]) Push(x any) {
	it := x.(*item[T])
	it.index = len(*h)
	*h = append(*h, it)
}
func (h *itemHeap[T]) Pop() any {
	old := *h
	it := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	it.index = -1
	return it
}
