package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/orchestry/orchestry/pkg/events"
	"github.com/orchestry/orchestry/services/routing/feed"
	"github.com/orchestry/orchestry/services/routing/nodeconfig"
)

// Limits of GET /v1/events.
const (
	DefaultEventLimit = 100
	MaxEventLimit     = 1000
	// DefaultKeepAlive is the interval of the event stream's keepalive
	// comments.
	DefaultKeepAlive = 15 * time.Second
	// streamWriteTimeout bounds each write of the event stream.
	streamWriteTimeout = 30 * time.Second
	// maxSubjectFilter bounds the subject query parameter.
	maxSubjectFilter = 256
)

// NodeConfigSource fetches the live config of an NGINX node; an error
// wrapping nodeconfig.ErrNoNode means no node of that name answered.
type NodeConfigSource interface {
	Fetch(ctx context.Context, node string) (events.NodeConfig, error)
}

// EventsView is the body of GET /v1/events.
type EventsView struct {
	Events []feed.EventRecord `json:"events"`
}

// RolloutView is the body of GET /v1/apps/{name}/rollout: the app's
// current revision and, per NGINX node, the revision it serves.
type RolloutView struct {
	App      string        `json:"app"`
	Revision uint64        `json:"revision"`
	Nodes    []RolloutNode `json:"nodes"`
}

// RolloutNode is one node of a RolloutView. Live says the node serves the
// app's current revision (ServedRevision >= the app's revision); Version,
// Outcome and Error are those of the node's last render report.
type RolloutNode struct {
	Node           string `json:"node"`
	ServedRevision uint64 `json:"served_revision"`
	Live           bool   `json:"live"`
	Version        uint64 `json:"version"`
	Outcome        string `json:"outcome,omitempty"`
	Error          string `json:"error,omitempty"`
}

// eventFilter reads the app and subject query parameters, answering 422
// itself when one is bad.
func eventFilter(w http.ResponseWriter, r *http.Request) (feed.Filter, bool) {
	q := r.URL.Query()
	f := feed.Filter{App: q.Get("app"), Subject: q.Get("subject")}
	var ve events.ValidationError
	if f.App != "" {
		if err := events.CheckName(f.App); err != nil {
			ve = append(ve, events.FieldError{Field: "app", Reason: err.Error()})
		}
	}
	if len(f.Subject) > maxSubjectFilter || strings.ContainsAny(f.Subject, " \t\r\n") {
		ve = append(ve, events.FieldError{Field: "subject", Reason: fmt.Sprintf("must be a subject prefix or NATS filter of at most %d characters without spaces", maxSubjectFilter)})
	}
	if len(ve) > 0 {
		writeValidation(w, ve)
		return feed.Filter{}, false
	}
	return f, true
}

// listEvents answers the newest events that pass the filter, oldest first.
func (s *server) listEvents(w http.ResponseWriter, r *http.Request) {
	f, ok := eventFilter(w, r)
	if !ok {
		return
	}
	limit := DefaultEventLimit
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxEventLimit {
			writeValidation(w, events.ValidationError{{Field: "limit", Reason: fmt.Sprintf("must be an integer from 1 to %d", MaxEventLimit)}})
			return
		}
		limit = n
	}
	writeJSON(w, http.StatusOK, EventsView{Events: s.events.Recent(f, 0, limit)})
}

// streamEvents sends the events that pass the filter as Server-Sent
// Events: those in the feed after Last-Event-ID (all of them without one,
// or when it is above the feed's newest, as after a restart of routing),
// then each new one, with a keepalive comment every s.keepAlive. A client
// too slow to keep up is dropped (it reconnects with its Last-Event-ID);
// every stream ends when the feed is closed (the API shutting down).
func (s *server) streamEvents(w http.ResponseWriter, r *http.Request) {
	f, ok := eventFilter(w, r)
	if !ok {
		return
	}
	var after uint64
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		if n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64); err == nil && n <= s.events.Last() {
			after = n
		}
	}
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)

	backlog, sub := s.events.Subscribe(f, after)
	defer s.events.Unsubscribe(sub)
	send := func(rec feed.EventRecord) bool {
		b, err := json.Marshal(rec)
		if err != nil {
			s.log.Error().Err(err).Uint64("seq", rec.Seq).Msg("encode event record")
			return true
		}
		if _, err := fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", rec.Seq, rec.Type, b); err != nil {
			return false
		}
		return true
	}
	// Each flush must finish within streamWriteTimeout: a client that
	// stops reading ends its stream instead of holding a goroutine.
	flush := func() bool {
		ok := rc.Flush() == nil
		_ = rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
		return ok
	}
	_ = rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
	if _, err := fmt.Fprint(w, "retry: 2000\n\n"); err != nil {
		return
	}
	for _, rec := range backlog {
		if !send(rec) {
			return
		}
	}
	if !flush() {
		return
	}
	tick := time.NewTicker(s.keepAlive)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case rec := <-sub.C():
			if !send(rec) || !flush() {
				return
			}
		case <-tick.C:
			if _, err := fmt.Fprint(w, ": keepalive\n\n"); err != nil || !flush() {
				return
			}
		case <-sub.Dropped():
			if s.events.Closed() { // the API is shutting down
				return
			}
			// Send what is already buffered, then end the stream.
			for {
				select {
				case rec := <-sub.C():
					if !send(rec) {
						return
					}
				default:
					_, _ = fmt.Fprint(w, ": dropped: too slow, reconnect with Last-Event-ID\n\n")
					_ = rc.Flush()
					s.log.Warn().Str("remote", r.RemoteAddr).Msg("event stream client too slow, dropped")
					return
				}
			}
		}
	}
}

// getRollout answers how far the app's current revision has reached each
// node.
func (s *server) getRollout(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	e, err := s.store.Get(r.Context(), name)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	out := RolloutView{App: name, Revision: e.Revision, Nodes: []RolloutNode{}}
	for _, n := range s.status.Nodes() {
		served := n.ServedRevisions[name]
		out.Nodes = append(out.Nodes, RolloutNode{
			Node: n.Node, ServedRevision: served, Live: served >= e.Revision,
			Version: n.Version, Outcome: n.Outcome, Error: n.Error,
		})
	}
	writeJSON(w, http.StatusOK, out)
}

// getNodeConfig answers the node's live config as text, asked of its
// renderer over NATS.
func (s *server) getNodeConfig(w http.ResponseWriter, r *http.Request) {
	node := r.PathValue("node")
	if err := events.CheckName(node); err != nil {
		writeValidation(w, events.ValidationError{{Field: "node", Reason: err.Error()}})
		return
	}
	if s.nodeCfg == nil {
		writeError(w, http.StatusNotFound, CodeNotFound, "no NGINX node "+node+" answered", nil)
		return
	}
	cfg, err := s.nodeCfg.Fetch(r.Context(), node)
	switch {
	case errors.Is(err, nodeconfig.ErrNoNode):
		writeError(w, http.StatusNotFound, CodeNotFound, "no NGINX node "+node+" answered", nil)
		return
	case err != nil:
		s.log.Error().Err(err).Str("node", node).Msg("node config request failed")
		writeError(w, http.StatusInternalServerError, CodeInternal, "node "+node+" could not send its config", nil)
		return
	case cfg.Version == 0:
		writeError(w, http.StatusNotFound, CodeNotFound, "NGINX node "+node+" has no live config yet", nil)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Orchestry-Config-Version", strconv.FormatUint(cfg.Version, 10))
	h.Set("X-Orchestry-Config-Hash", cfg.Hash)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(nodeconfig.Text(cfg)))
}
