package metrics

import (
	"sync/atomic"

	"github.com/rs/zerolog"

	"github.com/orchestry/orchestry/services/metrics/accesslog"
	"github.com/orchestry/orchestry/services/metrics/window"
)

// maxLogged bounds how much of a hostile line is ever logged.
const maxLogged = 128

// ingest is the hot path: parse each line, count it in the window, count
// every drop by reason. One goroutine calls handle (the Parser is not
// shared).
type ingest struct {
	parser   *accesslog.Parser
	agg      *window.Aggregator
	counters *Counters
	versions *servingVersions
	log      zerolog.Logger
	// the version cell of the node of the last line (nodes change
	// rarely from line to line)
	lastNode    string
	lastVersion *atomic.Uint64
}

func newIngest(agg *window.Aggregator, c *Counters, v *servingVersions, log zerolog.Logger) *ingest {
	return &ingest{parser: accesslog.NewParser(), agg: agg, counters: c, versions: v, log: log}
}

// handle takes one syslog payload, or the reason the listener dropped a
// datagram.
func (in *ingest) handle(payload []byte, err error) {
	if err == nil {
		var rec *accesslog.Record
		if rec, err = in.parser.Parse(payload); err == nil {
			var added window.Added
			if added, err = in.agg.Add(rec); err == nil {
				in.counters.Lines.Add(1)
				in.observeVersion(rec.Node, rec.ConfigVersion)
				if added.Folded > 0 {
					in.counters.Folded.Add(int64(added.Folded))
				}
				if added.Unattributed > 0 {
					in.counters.Unattributed.Add(int64(added.Unattributed))
				}
				return
			}
		}
	}
	reason := in.counters.drop(err)
	if e := in.log.Debug(); e.Enabled() {
		e.Str("reason", reason).Err(err).Bytes("line", clip(payload, maxLogged)).Msg("line dropped")
	}
}

// observeVersion records the config version of a line of node.
func (in *ingest) observeVersion(node string, v uint64) {
	if v == 0 {
		return
	}
	if node != in.lastNode || in.lastVersion == nil {
		in.lastNode, in.lastVersion = node, in.versions.cell(node)
		if in.lastVersion == nil {
			return // too many nodes
		}
	}
	raise(in.lastVersion, v)
}

func clip(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}
