package events

import (
	"fmt"
	"net/netip"
	"strconv"
	"time"
)

// Payload is implemented by the data type of every event.
type Payload interface {
	// Validate checks every field and returns a ValidationError naming
	// each bad one.
	Validate() error
	// entity is the last part of the subject the payload belongs on
	// (app, node or domain); Decode checks that they agree.
	entity() string
}

// Validate checks the app and each instance; ids must be unique.
func (r RoutingState) Validate() error {
	var f fields
	if r.Deleted {
		f.check("app.metadata.name", CheckName(r.App.Metadata.Name))
		return f.err()
	}
	r.App.validate(&f, "app.")
	seen := make(map[string]bool, len(r.Instances))
	for i, in := range r.Instances {
		p := fmt.Sprintf("instances[%d].", i)
		in.validate(&f, p)
		if seen[in.ID] {
			f.add(p+"id", "duplicate instance id %q", in.ID)
		}
		seen[in.ID] = true
	}
	if c := r.Auto; c != nil {
		c.validate(&f, "auto")
	}
	return f.err()
}

// validate checks an auto choice at p.
func (c AutoChoice) validate(f *fields, p string) {
	if c.Method != LBRoundRobin && c.Method != LBLeastConn {
		f.add(p+".method", "must be round_robin or least_conn")
	}
	for id, w := range c.Weights {
		if err := CheckInstanceID(id); err != nil {
			f.add(p+".weights", "instance id %s", err)
		} else if w < 1 || w > MaxAutoWeight {
			f.add(p+".weights."+id, "must be between 1 and %d", MaxAutoWeight)
		}
	}
}

func (r RoutingState) entity() string { return r.App.Metadata.Name }

// Validate checks the instance.
func (r InstanceRegistration) Validate() error {
	var f fields
	r.Instance.validate(&f, "instance.")
	return f.err()
}

func (r InstanceRegistration) entity() string { return "" }

// Validate checks the id.
func (r InstanceRemoval) Validate() error {
	var f fields
	f.check("id", CheckInstanceID(r.ID))
	return f.err()
}

func (r InstanceRemoval) entity() string { return "" }

// Validate checks the figures.
func (r StatsReport) Validate() error {
	var f fields
	f.check("instance_id", CheckInstanceID(r.InstanceID))
	if r.CPUPercent < 0 || r.CPUPercent > 100 {
		f.add("cpu_percent", "must be between 0 and 100")
	}
	if r.MemoryPercent < 0 || r.MemoryPercent > 100 {
		f.add("memory_percent", "must be between 0 and 100")
	}
	return f.err()
}

func (r StatsReport) entity() string { return "" }

var healthStates = map[string]bool{HealthHealthy: true, HealthUnhealthy: true, HealthEjected: true, HealthDraining: true}

// Validate checks the state.
func (h HealthState) Validate() error {
	var f fields
	f.check("app", CheckName(h.App))
	f.check("instance_id", CheckInstanceID(h.InstanceID))
	if !healthStates[h.State] {
		f.add("state", "must be healthy, unhealthy, ejected or draining")
	}
	if h.ConsecutiveFailures < 0 || h.ConsecutiveSuccesses < 0 {
		f.add("consecutive_failures", "counts must not be negative")
	}
	if len(h.LastError) > 1024 {
		f.add("last_error", "at most 1024 characters")
	}
	if h.Ejections < 0 {
		f.add("ejections", "must not be negative")
	}
	if h.EjectedUntil != nil && h.State != HealthEjected {
		f.add("ejected_until", "is only set while ejected")
	}
	return f.err()
}

func (h HealthState) entity() string { return h.App }

var outcomes = map[string]bool{OutcomeApplied: true, OutcomeUnchanged: true, OutcomeInvalid: true, OutcomeFailed: true}

// Validate checks the report.
func (r RenderReport) Validate() error {
	var f fields
	f.check("node", CheckName(r.Node))
	if !outcomes[r.Outcome] {
		f.add("outcome", "must be applied, unchanged, invalid or failed")
	}
	for i, p := range r.Problems {
		f.check(fmt.Sprintf("problems[%d].app", i), CheckName(p.App))
		if p.Reason == "" || len(p.Reason) > 1024 {
			f.add(fmt.Sprintf("problems[%d].reason", i), "must be 1-1024 characters")
		}
	}
	if r.StatusAddr != "" {
		f.check("status_addr", CheckHostPort(r.StatusAddr))
	}
	if len(r.Served) > 0 && r.LiveAt == nil {
		f.add("live_at", "is required with served")
	}
	for i, c := range r.Served {
		f.check(fmt.Sprintf("served[%d].app", i), CheckName(c.App))
	}
	return f.err()
}

func (r RenderReport) entity() string { return r.Node }

// Validate checks the certificate summary.
func (c Certificate) Validate() error {
	var f fields
	f.check("domain", CheckDomain(c.Domain))
	if !c.NotAfter.After(c.NotBefore) {
		f.add("not_after", "must be after not_before")
	}
	return f.err()
}

func (c Certificate) entity() string { return CertKey(c.Domain) }

// Validate checks the failure.
func (c CertFailure) Validate() error {
	var f fields
	f.check("domain", CheckDomain(c.Domain))
	if c.Reason == "" {
		f.add("reason", "is required")
	}
	return f.err()
}

func (c CertFailure) entity() string { return CertKey(c.Domain) }

// Validate checks the window.
func (m UpstreamMetrics) Validate() error {
	var f fields
	f.check("app", CheckName(m.App))
	if m.WindowSeconds <= 0 || m.WindowSeconds > float64(time.Hour/time.Second) {
		f.add("window_seconds", "must be between 0 and 3600")
	}
	for i, in := range m.Instances {
		field := "instances[" + strconv.Itoa(i) + "]"
		if _, err := netip.ParseAddrPort(in.Address); err != nil {
			f.add(field+".address", "must be ip:port")
		}
		if in.Requests < 0 || in.Status2xx < 0 || in.Status3xx < 0 || in.Status4xx < 0 || in.Status5xx < 0 ||
			in.GatewayErrors < 0 || in.Consecutive5xx < 0 || in.ConsecutiveGatewayErrors < 0 || in.Retries < 0 || in.Bytes < 0 {
			f.add(field, "counts must not be negative")
		}
	}
	return f.err()
}

func (m UpstreamMetrics) entity() string { return m.App }

// Validate checks the rejection.
func (r Rejection) Validate() error {
	var f fields
	if r.Reason == "" {
		f.add("reason", "is required")
	}
	return f.err()
}

func (r Rejection) entity() string { return "" }
