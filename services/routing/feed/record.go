package feed

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/orchestry/orchestry/pkg/events"
)

// maxSummary bounds a summary line, in bytes.
const maxSummary = 300

// Record turns an event received on subject into a record (Seq 0: Add
// numbers it), with its app, node or domain and a one-line summary.
func Record(subject string, ev events.Event) EventRecord {
	r := EventRecord{
		Subject: subject,
		Type:    ev.Envelope.Type,
		ID:      ev.Envelope.ID,
		Time:    ev.Envelope.Time.UTC(),
		Data:    slices.Clone(ev.Envelope.Data),
	}
	entity := subject[strings.LastIndexByte(subject, '.')+1:]
	switch p := ev.Payload.(type) {
	case events.RoutingState:
		r.App = p.App.Metadata.Name
		r.Summary = routingSummary(p)
	case events.InstanceRegistration:
		r.App = entity
		i := p.Instance
		r.Summary = fmt.Sprintf("instance %s of %s registered at %s", i.ID, entity, hostPort(i.IP, i.Port))
		if i.Draining {
			r.Summary += " (draining)"
		}
	case events.InstanceRemoval:
		r.App = entity
		r.Summary = fmt.Sprintf("instance %s of %s deregistered", p.ID, entity)
	case events.StatsReport:
		r.App = entity
		r.Summary = fmt.Sprintf("instance %s of %s: cpu %.0f%%, memory %.0f%%", p.InstanceID, entity, p.CPUPercent, p.MemoryPercent)
	case events.HealthState:
		r.App = p.App
		r.Summary = healthSummary(p)
	case events.RenderReport:
		r.Node = p.Node
		r.Summary = renderSummary(p)
	case events.Certificate:
		r.Domain = p.Domain
		r.Summary = fmt.Sprintf("certificate for %s issued by %s, valid until %s", p.Domain, orUnknown(p.Issuer), p.NotAfter.UTC().Format(time.RFC3339))
	case events.CertFailure:
		r.Domain = p.Domain
		r.Summary = fmt.Sprintf("certificate for %s failed: %s", p.Domain, p.Reason)
		if !p.NextAttempt.IsZero() {
			r.Summary += "; next attempt " + p.NextAttempt.UTC().Format(time.RFC3339)
		}
	case events.UpstreamMetrics:
		r.App = p.App
		r.Summary = trafficSummary(p)
	case events.Rejection:
		r.App, r.Node = rejectedEntity(p.Subject)
		by := p.By
		if by == "" {
			by = "a consumer"
		}
		r.Summary = fmt.Sprintf("event on %s rejected by %s: %s", p.Subject, by, p.Reason)
	default:
		r.Summary = ev.Envelope.Type + " on " + subject
	}
	r.Summary = clip(r.Summary)
	return r
}

func routingSummary(p events.RoutingState) string {
	name := p.App.Metadata.Name
	if p.Deleted {
		return fmt.Sprintf("app %s deleted (revision %d)", name, p.Revision)
	}
	s := fmt.Sprintf("app %s changed to revision %d: %d instance%s", name, p.Revision, len(p.Instances), plural(len(p.Instances)))
	if m := p.App.Spec.LBMethod; m != "" {
		s += ", " + m
	}
	if p.Auto != nil && p.Auto.Reason != "" {
		s += " (auto: " + p.Auto.Reason + ")"
	}
	return s
}

func healthSummary(p events.HealthState) string {
	s := fmt.Sprintf("instance %s %s", p.InstanceID, p.State)
	switch p.State {
	case events.HealthEjected:
		if p.EjectedUntil != nil {
			s += " until " + p.EjectedUntil.UTC().Format(time.RFC3339)
		}
		if p.Ejections > 1 {
			s += fmt.Sprintf(" (ejection %d in a row)", p.Ejections)
		}
	case events.HealthUnhealthy:
		if p.LastError != "" {
			s += ": " + p.LastError
		}
	}
	return s
}

func renderSummary(p events.RenderReport) string {
	total := math.Round(p.RenderMS + p.ValidateMS + p.ReloadMS)
	apps := fmt.Sprintf("%d app%s", p.Apps, plural(p.Apps))
	var s string
	switch p.Outcome {
	case events.OutcomeApplied:
		s = fmt.Sprintf("node %s applied version %d (%s) in %.0f ms", p.Node, p.Version, apps, total)
	case events.OutcomeUnchanged:
		s = fmt.Sprintf("node %s unchanged at version %d (%s)", p.Node, p.Version, apps)
	case events.OutcomeInvalid:
		s = fmt.Sprintf("node %s refused version %d as invalid, version %d stays live", p.Node, p.Attempted, p.Version)
	case events.OutcomeFailed:
		s = fmt.Sprintf("node %s failed to make version %d live, version %d stays live", p.Node, p.Attempted, p.Version)
	default:
		s = fmt.Sprintf("node %s: %s at version %d", p.Node, p.Outcome, p.Version)
	}
	if p.Error != "" {
		s += ": " + firstLine(p.Error)
	}
	if n := len(p.Problems); n > 0 {
		s += fmt.Sprintf("; %d app%s left out", n, plural(n))
	}
	return s
}

func trafficSummary(p events.UpstreamMetrics) string {
	var req, s5xx, gw int64
	p95 := 0.0
	for _, i := range p.Instances {
		req += i.Requests
		s5xx += i.Status5xx
		gw += i.GatewayErrors
		p95 = max(p95, i.P95MS)
	}
	s := fmt.Sprintf("app %s: %d request%s in %gs", p.App, req, plural(int(req)), p.WindowSeconds)
	if req > 0 {
		s += fmt.Sprintf(", %d 5xx, %d gateway errors, worst p95 %.0f ms", s5xx, gw, p95)
	}
	return s
}

// rejectedEntity names the app or node of a refused event's subject.
func rejectedEntity(subject string) (app, node string) {
	i := strings.LastIndexByte(subject, '.')
	if i < 0 {
		return "", ""
	}
	family, entity := subject[:i], subject[i+1:]
	if events.CheckName(entity) != nil {
		return "", ""
	}
	switch family {
	case "routing.changed", "instance.registered", "instance.deregistered", "instance.stats", "instance.health", "metrics.upstream":
		return entity, ""
	case "config.rendered":
		return "", entity
	}
	return "", ""
}

func hostPort(ip string, port int) string {
	if strings.Contains(ip, ":") {
		return fmt.Sprintf("[%s]:%d", ip, port)
	}
	return fmt.Sprintf("%s:%d", ip, port)
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func orUnknown(s string) string {
	if s == "" {
		return "an unknown issuer"
	}
	return s
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// clip cuts s to maxSummary bytes on a rune boundary.
func clip(s string) string {
	if len(s) <= maxSummary {
		return s
	}
	cut := maxSummary - len("…")
	for cut > 0 && !isRuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }
