// Package health probes every registered instance and publishes its health
// transitions on instance.health.<app>. It follows routing.changed for the
// targets, runs HTTP and TCP probes on a bounded worker pool, keeps the
// per-instance state machine, stores each instance's state in the health KV
// bucket with compare-and-set, and shares the targets between replicas by
// rendezvous hashing over the live members of the group.
package health

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/orchestry/orchestry/pkg/events"
	"github.com/orchestry/orchestry/services/health/members"
	"github.com/orchestry/orchestry/services/health/probe"
	"github.com/orchestry/orchestry/services/health/schedule"
	"github.com/orchestry/orchestry/services/health/tracker"
)

// Config is the health service's configuration, read from the environment.
type Config struct {
	// Workers is how many probes run at once at most.
	Workers int `env:"ORCHESTRY_HEALTH_WORKERS" envDefault:"256"`
	// InitialState is the state of a new instance before its thresholds
	// are met: "unhealthy" (no traffic until the first passing probe) or
	// "healthy".
	InitialState string `env:"ORCHESTRY_HEALTH_INITIAL_STATE" envDefault:"unhealthy"`
	// Replica names this replica in the member group and in the source of
	// its events; empty means <hostname>-<pid>.
	Replica string `env:"ORCHESTRY_HEALTH_REPLICA"`
	// Heartbeat is how often the replica renews its membership.
	Heartbeat time.Duration `env:"ORCHESTRY_HEALTH_HEARTBEAT" envDefault:"1s"`
	// Lease is how long a member counts as live after its last heartbeat;
	// a dead replica's targets move to the others after it.
	Lease time.Duration `env:"ORCHESTRY_HEALTH_LEASE" envDefault:"3s"`
}

// Defaults of a health check's timing, used when the app leaves them at zero.
const (
	DefaultPeriod     = 10 * time.Second
	DefaultMaxTimeout = 5 * time.Second
	// MinPeriod bounds how often one target is probed.
	MinPeriod = 50 * time.Millisecond
)

// Service is one health replica.
type Service struct {
	cfg     Config
	js      jetstream.JetStream
	log     zerolog.Logger
	source  string
	prober  *probe.Prober
	tracker *tracker.Tracker
	sched   *schedule.Scheduler[target]
	group   atomic.Pointer[members.Group]
	kv      jetstream.KeyValue
	gate    events.Gate

	// crash skips leaving the member group on stop (tests simulate a
	// replica that died).
	crash bool
}

// target is one instance to probe.
type target struct {
	app, id string
	probe   probe.Target
	th      tracker.Thresholds
	timeout time.Duration
}

var replicaRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// New checks the configuration and prepares the service.
func New(nc *nats.Conn, cfg Config, log zerolog.Logger) (*Service, error) {
	if cfg.InitialState != events.HealthHealthy && cfg.InitialState != events.HealthUnhealthy {
		return nil, fmt.Errorf("health: ORCHESTRY_HEALTH_INITIAL_STATE must be healthy or unhealthy, not %q", cfg.InitialState)
	}
	if cfg.Workers < 1 {
		return nil, fmt.Errorf("health: ORCHESTRY_HEALTH_WORKERS must be at least 1, not %d", cfg.Workers)
	}
	if cfg.Heartbeat <= 0 || cfg.Lease <= cfg.Heartbeat {
		return nil, fmt.Errorf("health: ORCHESTRY_HEALTH_LEASE (%s) must exceed ORCHESTRY_HEALTH_HEARTBEAT (%s) > 0", cfg.Lease, cfg.Heartbeat)
	}
	if cfg.Replica == "" {
		cfg.Replica = defaultReplica()
	}
	if !replicaRE.MatchString(cfg.Replica) {
		return nil, fmt.Errorf("health: ORCHESTRY_HEALTH_REPLICA %q must be 1-64 letters, digits, '_' or '-'", cfg.Replica)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("health: jetstream: %w", err)
	}
	s := &Service{
		cfg:     cfg,
		js:      js,
		log:     log.With().Str("service", "health").Str("replica", cfg.Replica).Logger(),
		source:  "health/" + cfg.Replica,
		prober:  probe.New(cfg.Replica),
		tracker: tracker.New(cfg.InitialState),
	}
	s.sched = schedule.New(cfg.Workers, s.check, s.owns)
	return s, nil
}

// defaultReplica is <hostname>-<pid>, reduced to the replica id alphabet.
func defaultReplica() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "health"
	}
	b := []byte(host)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			b[i] = '_'
		}
	}
	if len(b) > 50 {
		b = b[:50]
	}
	return string(b) + "-" + strconv.Itoa(os.Getpid())
}

// Replica returns this replica's id.
func (s *Service) Replica() string { return s.cfg.Replica }

// Run provisions the streams and buckets, loads the stored health states,
// joins the member group, follows routing.changed and probes the targets
// this replica owns until ctx ends. It returns nil when ctx ends.
func (s *Service) Run(ctx context.Context) error {
	if err := events.Provision(ctx, s.js, 1); err != nil {
		return fmt.Errorf("health: %w", err)
	}
	defer s.prober.Close()
	var err error
	if s.kv, err = s.js.KeyValue(ctx, events.BucketHealth); err != nil {
		return fmt.Errorf("health: bucket %s: %w", events.BucketHealth, err)
	}
	mkv, err := s.js.KeyValue(ctx, events.BucketMembers)
	if err != nil {
		return fmt.Errorf("health: bucket %s: %w", events.BucketMembers, err)
	}
	// Load the stored states first, so the first probes continue from
	// the truth and an unchanged state is not published again.
	watchDone, err := s.watchStates(ctx)
	if err != nil {
		return quiet(ctx, err)
	}
	group := members.New(mkv, "health", s.cfg.Replica, s.cfg.Heartbeat, s.cfg.Lease, s.log)
	groupDone, err := group.Start(ctx)
	if err != nil {
		return quiet(ctx, fmt.Errorf("health: %w", err))
	}
	s.group.Store(group)
	cc, err := s.followRouting(ctx)
	if err != nil {
		return quiet(ctx, err)
	}
	s.log.Info().Int("workers", s.cfg.Workers).Str("initial_state", s.cfg.InitialState).Msg("health started")
	s.sched.Run(ctx)
	cc.Stop()
	<-groupDone
	<-watchDone
	if !s.crash {
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		if err := group.Leave(lctx); err != nil {
			s.log.Warn().Err(err).Msg("leave member group")
		}
	}
	s.log.Info().Msg("health stopped")
	return nil
}

// quiet turns an error caused by ctx ending into nil.
func quiet(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// owns reports whether this replica probes the target at key.
func (s *Service) owns(key string) bool {
	app, id, ok := splitKey(key)
	if !ok {
		return false
	}
	g := s.group.Load()
	return g != nil && g.Owns(app+"/"+id)
}

// Members returns the live replicas this replica sees, itself included;
// nil before it has joined the group.
func (s *Service) Members() []string {
	if g := s.group.Load(); g != nil {
		return g.Live()
	}
	return nil
}

// check probes one target and publishes the state when it changed.
func (s *Service) check(ctx context.Context, key string, t target) {
	r := s.prober.Check(ctx, t.probe, t.timeout)
	if ctx.Err() != nil {
		return // stopping: the result says nothing about the target
	}
	if !r.OK {
		s.log.Debug().Str("app", t.app).Str("instance", t.id).Str("error", r.Err).Msg("probe failed")
	}
	st, report := s.tracker.Observe(key, t.app, t.id, t.th,
		tracker.Result{OK: r.OK, Latency: r.Latency, Err: r.Err, At: time.Now().UTC()})
	if !report || !s.sched.Has(key) {
		return
	}
	s.commit(ctx, key, st)
}

// splitKey recovers the app and instance id from a HealthKey.
func splitKey(key string) (app, id string, ok bool) {
	for i := 0; i < len(key); i++ {
		if key[i] == '.' {
			raw, err := decodeID(key[i+1:])
			if err != nil {
				return "", "", false
			}
			return key[:i], raw, true
		}
	}
	return "", "", false
}

// errConflict: another replica wrote the state first.
var errConflict = errors.New("health state changed by another writer")
