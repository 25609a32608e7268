// Package health probes every registered instance and publishes its health
// transitions on instance.health.<app>. It follows routing.changed for the
// targets, runs HTTP and TCP probes on a bounded worker pool, keeps the
// per-instance state machine, stores each instance's state in the health KV
// bucket with compare-and-set, and shares the targets between replicas by
// rendezvous hashing over the live members of the group. From the traffic
// figures of metrics.upstream it ejects outliers (passive detection, the
// circuit breaker; see package outlier), which return through a passing
// probe once their ejection time has passed.
package health

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/orchestry/orchestry/pkg/events"
	"github.com/orchestry/orchestry/services/health/members"
	"github.com/orchestry/orchestry/services/health/outlier"
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

	// Passive outlier detection (the circuit breaker), fed by
	// metrics.upstream: a zero threshold disables its rule; with every
	// rule off the service does not consume metrics at all.

	// OutlierConsecutiveGateway ejects an instance whose trailing run of
	// gateway errors (502/503/504, NGINX's connection failures included)
	// reaches it.
	OutlierConsecutiveGateway int `env:"ORCHESTRY_HEALTH_OUTLIER_CONSECUTIVE_GATEWAY" envDefault:"5"`
	// OutlierConsecutive5xx ejects an instance whose trailing run of 5xx
	// reaches it.
	OutlierConsecutive5xx int `env:"ORCHESTRY_HEALTH_OUTLIER_CONSECUTIVE_5XX" envDefault:"5"`
	// OutlierFailurePercent ejects an instance whose 5xx make up at least
	// this percentage of a window's requests (with OutlierMinRequests).
	OutlierFailurePercent int `env:"ORCHESTRY_HEALTH_OUTLIER_FAILURE_PERCENT" envDefault:"50"`
	// OutlierMinRequests is the least requests in a window for the
	// failure percentage to count.
	OutlierMinRequests int `env:"ORCHESTRY_HEALTH_OUTLIER_MIN_REQUESTS" envDefault:"10"`
	// OutlierBaseEjection is the first ejection's time; each repeat
	// doubles it, and each such time back in service steps it down again.
	OutlierBaseEjection time.Duration `env:"ORCHESTRY_HEALTH_OUTLIER_BASE_EJECTION" envDefault:"30s"`
	// OutlierMaxEjection caps an ejection's time.
	OutlierMaxEjection time.Duration `env:"ORCHESTRY_HEALTH_OUTLIER_MAX_EJECTION" envDefault:"5m"`
	// OutlierMaxPercent is the largest share of an app's instances that
	// may be out of service (ejected or unhealthy) for an ejection to
	// happen; rounded down, so one instance at 50% is never ejected.
	OutlierMaxPercent int `env:"ORCHESTRY_HEALTH_OUTLIER_MAX_PERCENT" envDefault:"50"`
	// NatsReplicas is how many NATS servers hold each stream and bucket
	// this service provisions (3 on a three-node JetStream cluster).
	NatsReplicas int `env:"ORCHESTRY_NATS_REPLICAS" envDefault:"1"`
}

// rules are the outlier rules of cfg.
func (cfg Config) rules() outlier.Rules {
	return outlier.Rules{
		ConsecutiveGateway: int64(cfg.OutlierConsecutiveGateway),
		Consecutive5xx:     int64(cfg.OutlierConsecutive5xx),
		FailurePercent:     int64(cfg.OutlierFailurePercent),
		MinRequests:        int64(cfg.OutlierMinRequests),
	}
}

// validateOutlier checks the outlier settings, naming the variable at fault.
func (cfg Config) validateOutlier() error {
	for _, v := range []struct {
		name string
		n    int
		max  int
	}{
		{"ORCHESTRY_HEALTH_OUTLIER_CONSECUTIVE_GATEWAY", cfg.OutlierConsecutiveGateway, 0},
		{"ORCHESTRY_HEALTH_OUTLIER_CONSECUTIVE_5XX", cfg.OutlierConsecutive5xx, 0},
		{"ORCHESTRY_HEALTH_OUTLIER_FAILURE_PERCENT", cfg.OutlierFailurePercent, 100},
		{"ORCHESTRY_HEALTH_OUTLIER_MIN_REQUESTS", cfg.OutlierMinRequests, 0},
		{"ORCHESTRY_HEALTH_OUTLIER_MAX_PERCENT", cfg.OutlierMaxPercent, 100},
	} {
		if v.n < 0 {
			return fmt.Errorf("health: %s must not be negative, not %d", v.name, v.n)
		}
		if v.max > 0 && v.n > v.max {
			return fmt.Errorf("health: %s must be at most %d, not %d", v.name, v.max, v.n)
		}
	}
	if !cfg.rules().Enabled() {
		return nil
	}
	if cfg.OutlierBaseEjection <= 0 {
		return fmt.Errorf("health: ORCHESTRY_HEALTH_OUTLIER_BASE_EJECTION must be positive, not %s", cfg.OutlierBaseEjection)
	}
	if cfg.OutlierMaxEjection < cfg.OutlierBaseEjection {
		return fmt.Errorf("health: ORCHESTRY_HEALTH_OUTLIER_MAX_EJECTION (%s) must be at least ORCHESTRY_HEALTH_OUTLIER_BASE_EJECTION (%s)",
			cfg.OutlierMaxEjection, cfg.OutlierBaseEjection)
	}
	return nil
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
	rules   outlier.Rules

	// mu guards apps and owned.
	mu sync.Mutex
	// apps is each app's instances as routing last stated them, for
	// matching traffic figures (by address) to instances.
	apps map[string][]member
	// owned is whether this replica owned each target when the
	// scheduler last asked, to tell when it takes one over.
	owned map[string]bool

	// crash skips leaving the member group on stop (tests simulate a
	// replica that died).
	crash bool
	// started is when the service was made: routing changes published
	// before it are a replay.
	started time.Time

	prom *promMetrics
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
	if err := cfg.validateOutlier(); err != nil {
		return nil, err
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
		started: time.Now(),
		cfg:     cfg,
		js:      js,
		log:     log.With().Str("service", "health").Str("replica", cfg.Replica).Logger(),
		source:  "health/" + cfg.Replica,
		prober:  probe.New(cfg.Replica),
		tracker: tracker.New(cfg.InitialState, outlier.Backoff{Base: cfg.OutlierBaseEjection, Max: cfg.OutlierMaxEjection}),
		rules:   cfg.rules(),
		apps:    map[string][]member{},
		owned:   map[string]bool{},
		prom:    newPromMetrics(),
	}
	s.sched = schedule.New(cfg.Workers, s.check, s.claim)
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
	if err := events.ProvisionFor(ctx, s.js, s.cfg.NatsReplicas, events.ServiceHealth); err != nil {
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
	var mc *events.Follower
	if s.rules.Enabled() {
		if mc, err = s.followMetrics(ctx); err != nil {
			cc.Stop()
			return quiet(ctx, err)
		}
	}
	s.log.Info().Int("workers", s.cfg.Workers).Str("initial_state", s.cfg.InitialState).
		Bool("outlier_detection", s.rules.Enabled()).Msg("health started")
	s.sched.Run(ctx)
	cc.Stop()
	if mc != nil {
		mc.Stop()
	}
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

// claim is the scheduler's ownership test: whether this replica probes the
// target at key now. When it takes a target over (it did not own it when
// last asked, or was never asked), the tracker resumes from the stored
// state: the counts and state the previous owner stored, not whatever this
// replica kept from an earlier time it probed the target.
func (s *Service) claim(key string) bool {
	own := s.owns(key)
	s.mu.Lock()
	was := s.owned[key]
	s.owned[key] = own
	s.mu.Unlock()
	if own && !was {
		s.tracker.Resume(key)
	}
	return own
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
	s.prom.probed(r.OK, r.Latency)
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
