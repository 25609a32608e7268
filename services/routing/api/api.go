// Package api serves routing's versioned REST API under /v1: apps,
// their instances, the render status of every NGINX node, each app's
// rollout over the nodes, a node's live config, and the recent and live
// events (also as Server-Sent Events). Every request
// needs "Authorization: Bearer <token>"; every error has Orchestry's shape
// {"error", "code", "details", "timestamp"}. The orchestry command line
// (cmd/orchestry/cli) decodes the answers into this package's exported
// types (and those of status, feed and pkg/events they hold), so a change
// to a type here is a change to the CLI too.
package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/orchestry/orchestry/pkg/events"
	"github.com/orchestry/orchestry/services/routing/certview"
	"github.com/orchestry/orchestry/services/routing/feed"
	"github.com/orchestry/orchestry/services/routing/status"
	"github.com/orchestry/orchestry/services/routing/store"
)

// Error codes of the error body.
const (
	CodeValidation   = "VALIDATION_ERROR"
	CodeNotFound     = "NOT_FOUND"
	CodeUnauthorized = "UNAUTHORIZED"
	CodeConflict     = "CONFLICT"
	CodeBadRequest   = "BAD_REQUEST"
	CodeInternal     = "INTERNAL"
)

// DefaultMaxBody is the request body limit when Options.MaxBody is zero.
const DefaultMaxBody = 1 << 20

// ErrorBody is the JSON body of every error response.
type ErrorBody struct {
	Error     string              `json:"error"`
	Code      string              `json:"code" jsonschema:"enum=VALIDATION_ERROR,enum=NOT_FOUND,enum=UNAUTHORIZED,enum=CONFLICT,enum=BAD_REQUEST,enum=INTERNAL"`
	Details   []events.FieldError `json:"details,omitempty"`
	Timestamp string              `json:"timestamp" jsonschema:"format=date-time"`
}

// StatusSource gives the last render report of every NGINX node.
type StatusSource interface {
	Nodes() []status.Node
}

// HealthSource gives the health service's view of an instance.
type HealthSource interface {
	Lookup(app, id string) (events.HealthState, bool)
}

// TrafficSource gives the latest traffic window of an app.
type TrafficSource interface {
	Latest(app string) (events.UpstreamMetrics, bool)
}

// CertSource gives what the certs service last said of each domain.
type CertSource interface {
	Domains() map[string]certview.Domain
}

// Options configure the handler.
type Options struct {
	// Certs answers GET /v1/certs; nil shows every TLS domain as pending.
	Certs CertSource
	// Health shows each instance's health in instance lists; nil shows none.
	Health HealthSource
	// Traffic answers GET /v1/apps/{name}/metrics; nil answers no window.
	Traffic TrafficSource
	// Token is the bearer token every request must carry.
	Token string
	// MaxBody limits request bodies, in bytes (DefaultMaxBody when zero).
	MaxBody int64
	// Events answers GET /v1/events and /v1/events/stream; nil shows an
	// empty feed.
	Events *feed.Feed
	// NodeConfig answers GET /v1/nodes/{node}/config; nil finds no node.
	NodeConfig NodeConfigSource
	// KeepAlive is the interval of the event stream's keepalive comments
	// (DefaultKeepAlive when zero).
	KeepAlive time.Duration
}

// server holds the handlers' dependencies.
type server struct {
	store   *store.Store
	status  StatusSource
	health  HealthSource
	traffic TrafficSource
	certs   CertSource
	token   [sha256.Size]byte
	maxBody int64
	log     zerolog.Logger
	// The live views: the event feed, the nodes' configs, and the
	// stream's keepalive interval.
	events    *feed.Feed
	nodeCfg   NodeConfigSource
	keepAlive time.Duration
}

// route is one operation of the API: a method, a ServeMux pattern and the
// handler, a method of server.
type route struct {
	method, pattern string
	handle          func(s *server, w http.ResponseWriter, r *http.Request)
}

// routes is every operation New serves, one line each. openapi.json must
// document each one, with every status its handler writes
// (TestSpecCoversRoutes, TestResponsesMatchSpec).
var routes = []route{
	{"GET", "/v1/apps", (*server).listApps},
	{"GET", "/v1/apps/{name}", (*server).getApp},
	{"PUT", "/v1/apps/{name}", (*server).putApp},
	{"DELETE", "/v1/apps/{name}", (*server).deleteApp},
	{"GET", "/v1/apps/{name}/instances", (*server).listInstances},
	{"POST", "/v1/apps/{name}/instances", (*server).postInstance},
	{"DELETE", "/v1/apps/{name}/instances/{id}", (*server).deleteInstance},
	{"GET", "/v1/apps/{name}/metrics", (*server).getMetrics},
	{"GET", "/v1/apps/{name}/routes", (*server).listRoutes},
	{"GET", "/v1/apps/{name}/routes/{id}", (*server).getRoute},
	{"PUT", "/v1/apps/{name}/routes/{id}", (*server).putRoute},
	{"DELETE", "/v1/apps/{name}/routes/{id}", (*server).deleteRoute},
	{"GET", "/v1/status", (*server).getStatus},
	{"GET", "/v1/certs", (*server).listCerts},
	{"GET", "/v1/openapi.json", (*server).getOpenAPI},
	{"GET", "/v1/apps/{name}/rollout", (*server).getRollout},
	{"GET", "/v1/events", (*server).listEvents},
	{"GET", "/v1/events/stream", (*server).streamEvents},
	{"GET", "/v1/nodes/{node}/config", (*server).getNodeConfig},
}

// New returns the API handler. The token is kept only as a hash.
func New(st *store.Store, ss StatusSource, opts Options, log zerolog.Logger) http.Handler {
	s := &server{store: st, status: ss, health: opts.Health, traffic: opts.Traffic, certs: opts.Certs, token: sha256.Sum256([]byte(opts.Token)), maxBody: opts.MaxBody, log: log}
	if s.maxBody <= 0 {
		s.maxBody = DefaultMaxBody
	}
	s.events, s.nodeCfg, s.keepAlive = opts.Events, opts.NodeConfig, opts.KeepAlive
	if s.events == nil {
		s.events = feed.New(feed.Options{})
	}
	if s.keepAlive <= 0 {
		s.keepAlive = DefaultKeepAlive
	}
	mux := http.NewServeMux()
	for _, rt := range routes {
		handle := rt.handle
		mux.HandleFunc(rt.method+" "+rt.pattern, func(w http.ResponseWriter, r *http.Request) { handle(s, w, r) })
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, CodeNotFound, "no such endpoint: "+r.Method+" "+r.URL.Path, nil)
	})
	return s.logged(s.authorized(mux))
}

// authorized refuses requests without the right bearer token, comparing in
// constant time.
func (s *server) authorized(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		sum := sha256.Sum256([]byte(got))
		if !ok || subtle.ConstantTimeCompare(sum[:], s.token[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="orchestry"`)
			writeError(w, http.StatusUnauthorized, CodeUnauthorized, "missing or invalid bearer token", nil)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// statusRecorder remembers the status code written.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.code = code
	r.ResponseWriter.WriteHeader(code)
}

// Unwrap gives http.ResponseController the writer underneath (to flush
// the event stream and lift its read deadline).
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// logged writes one structured line per request (never the headers).
func (s *server) logged(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(rec, r)
		s.log.Info().Str("method", r.Method).Str("path", r.URL.Path).Int("status", rec.code).
			Dur("duration", time.Since(start)).Str("remote", r.RemoteAddr).Msg("http request")
	})
}

// writeJSON writes v with status code.
func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError writes an error body.
func writeError(w http.ResponseWriter, code int, errCode, msg string, details []events.FieldError) {
	writeJSON(w, code, ErrorBody{Error: msg, Code: errCode, Details: details, Timestamp: time.Now().UTC().Format(time.RFC3339)})
}

// writeStoreError maps store errors to responses.
func (s *server) writeStoreError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrInstanceNotFound), errors.Is(err, store.ErrRuleNotFound):
		writeError(w, http.StatusNotFound, CodeNotFound, err.Error(), nil)
	case errors.Is(err, store.ErrAddressTaken):
		writeError(w, http.StatusConflict, CodeConflict, err.Error(), []events.FieldError{
			{Field: "spec.networking.domain", Reason: "external port and domain already used by another app"},
		})
	case errors.Is(err, store.ErrContention):
		writeError(w, http.StatusConflict, CodeConflict, err.Error(), nil)
	default:
		s.log.Error().Err(err).Str("method", r.Method).Str("path", r.URL.Path).Msg("request failed")
		writeError(w, http.StatusInternalServerError, CodeInternal, "internal error", nil)
	}
}

// writeValidation writes a 422 listing every bad field.
func writeValidation(w http.ResponseWriter, ve events.ValidationError) {
	writeError(w, http.StatusUnprocessableEntity, CodeValidation, "invalid fields: "+strings.Join(fieldNames(ve), ", "), ve)
}

func fieldNames(ve events.ValidationError) []string {
	out := make([]string, len(ve))
	for i, f := range ve {
		out[i] = f.Field
	}
	return out
}
