package metrics

import (
	"errors"
	"sync/atomic"

	"github.com/orchestry/orchestry/services/metrics/accesslog"
	"github.com/orchestry/orchestry/services/metrics/syslog"
	"github.com/orchestry/orchestry/services/metrics/window"
)

// Counters counts what became of every datagram received, since the
// service started. Each field is safe to read at any time.
type Counters struct {
	// Lines is the number of lines counted in a window.
	Lines atomic.Int64

	// Lines dropped, by reason.

	// Oversized datagrams were longer than 8 KiB.
	Oversized atomic.Int64
	// BadFrame datagrams lacked the "<PRI>TIMESTAMP orchestry: " header.
	BadFrame atomic.Int64
	// BadJSON lines were not one flat JSON object (or repeated a field).
	BadJSON atomic.Int64
	// MissingField lines lacked a field of the format.
	MissingField atomic.Int64
	// BadField lines had a value off its grammar (app or node name,
	// status, time, version...).
	BadField atomic.Int64
	// BadAddress lines had an upstream address that is neither ip:port
	// nor an upstream name.
	BadAddress atomic.Int64
	// Misaligned lines had upstream lists of different lengths or
	// groupings.
	Misaligned atomic.Int64
	// UnknownApp lines named an app not known from routing.changed.
	UnknownApp atomic.Int64

	// Attempts of counted lines that are not listed per address.

	// Folded attempts went to an address beyond the app's
	// ORCHESTRY_METRICS_MAX_INSTANCES in their window.
	Folded atomic.Int64
	// Unattributed attempts named no address: NGINX found no server to
	// try and logged the upstream's name.
	Unattributed atomic.Int64
}

// Snapshot returns every counter by a stable snake_case name (the reason
// label of a future Prometheus counter).
func (c *Counters) Snapshot() map[string]int64 {
	return map[string]int64{
		"lines":         c.Lines.Load(),
		"oversized":     c.Oversized.Load(),
		"bad_frame":     c.BadFrame.Load(),
		"bad_json":      c.BadJSON.Load(),
		"missing_field": c.MissingField.Load(),
		"bad_field":     c.BadField.Load(),
		"bad_address":   c.BadAddress.Load(),
		"misaligned":    c.Misaligned.Load(),
		"unknown_app":   c.UnknownApp.Load(),
		"folded":        c.Folded.Load(),
		"unattributed":  c.Unattributed.Load(),
	}
}

// Dropped is the number of lines dropped for any reason.
func (c *Counters) Dropped() int64 {
	return c.Oversized.Load() + c.BadFrame.Load() + c.BadJSON.Load() + c.MissingField.Load() +
		c.BadField.Load() + c.BadAddress.Load() + c.Misaligned.Load() + c.UnknownApp.Load()
}

// drop counts a line dropped for err and returns its reason's name.
func (c *Counters) drop(err error) string {
	switch {
	case errors.Is(err, syslog.ErrOversized), errors.Is(err, accesslog.ErrTooLong):
		c.Oversized.Add(1)
		return "oversized"
	case errors.Is(err, syslog.ErrFrame):
		c.BadFrame.Add(1)
		return "bad_frame"
	case errors.Is(err, accesslog.ErrSyntax):
		c.BadJSON.Add(1)
		return "bad_json"
	case errors.Is(err, accesslog.ErrMissing):
		c.MissingField.Add(1)
		return "missing_field"
	case errors.Is(err, accesslog.ErrAddress):
		c.BadAddress.Add(1)
		return "bad_address"
	case errors.Is(err, accesslog.ErrMisaligned):
		c.Misaligned.Add(1)
		return "misaligned"
	case errors.Is(err, window.ErrUnknownApp):
		c.UnknownApp.Add(1)
		return "unknown_app"
	default: // accesslog.ErrInvalid
		c.BadField.Add(1)
		return "bad_field"
	}
}
