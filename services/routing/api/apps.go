package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/orchestry/orchestry/pkg/events"
	"github.com/orchestry/orchestry/services/routing/spec"
	"github.com/orchestry/orchestry/services/routing/status"
	"github.com/orchestry/orchestry/services/routing/store"
)

// AppView is one app as the API returns it: the declared app, its
// instances and its revision.
type AppView struct {
	App       events.App        `json:"app"`
	Instances []events.Instance `json:"instances"`
	Revision  uint64            `json:"revision"`
}

// AppsView is the body of GET /v1/apps.
type AppsView struct {
	Apps []AppView `json:"apps"`
}

// PutResult is the body of a successful PUT /v1/apps/{name}.
type PutResult struct {
	App      events.App `json:"app"`
	Warnings []string   `json:"warnings" jsonschema:"nullable"`
	Revision uint64     `json:"revision"`
}

// InstanceResult is the body of a successful POST .../instances.
type InstanceResult struct {
	Instance events.Instance `json:"instance"`
	Revision uint64          `json:"revision"`
}

// InstancesView is the body of GET .../instances.
type InstancesView struct {
	Instances []InstanceView `json:"instances"`
	Revision  uint64         `json:"revision"`
}

// InstanceView is one instance with its health (state, consecutive counts,
// last error and since-when), absent until the health service reports.
type InstanceView struct {
	events.Instance
	Health *events.HealthState `json:"health,omitempty"`
}

// StatusView is the body of GET /v1/status.
type StatusView struct {
	Nodes []status.Node `json:"nodes"`
}

func view(e store.Entry) AppView {
	ins := e.Record.Instances
	if ins == nil {
		ins = []events.Instance{}
	}
	return AppView{App: e.Record.App, Instances: ins, Revision: e.Revision}
}

func (s *server) listApps(w http.ResponseWriter, r *http.Request) {
	all, err := s.store.List(r.Context())
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	out := AppsView{Apps: make([]AppView, 0, len(all))}
	for _, e := range all {
		out.Apps = append(out.Apps, view(e))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *server) getApp(w http.ResponseWriter, r *http.Request) {
	e, err := s.store.Get(r.Context(), r.PathValue("name"))
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, view(e))
}

func (s *server) putApp(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	body, ok := s.readBody(w, r)
	if !ok {
		return
	}
	app, warnings, err := spec.Parse(body, r.Header.Get("Content-Type"), name)
	var ve events.ValidationError
	switch {
	case errors.As(err, &ve):
		writeValidation(w, ve)
		return
	case errors.Is(err, spec.ErrMediaType):
		writeError(w, http.StatusUnsupportedMediaType, CodeBadRequest, err.Error(), nil)
		return
	case err != nil:
		writeError(w, http.StatusBadRequest, CodeBadRequest, err.Error(), nil)
		return
	}
	rev, created, err := s.store.PutApp(r.Context(), app)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	code := http.StatusOK
	if created {
		code = http.StatusCreated
	}
	s.log.Info().Str("app", name).Uint64("revision", rev).Bool("created", created).Strs("warnings", warnings).Msg("app stored")
	writeJSON(w, code, PutResult{App: app, Warnings: warnings, Revision: rev})
}

func (s *server) deleteApp(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if err := s.store.DeleteApp(r.Context(), name); err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	s.log.Info().Str("app", name).Msg("app deleted")
	w.WriteHeader(http.StatusNoContent)
}

func (s *server) listInstances(w http.ResponseWriter, r *http.Request) {
	e, err := s.store.Get(r.Context(), r.PathValue("name"))
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	v := view(e)
	out := InstancesView{Instances: make([]InstanceView, len(v.Instances)), Revision: v.Revision}
	for i, in := range v.Instances {
		out.Instances[i].Instance = in
		if s.health != nil {
			if h, ok := s.health.Lookup(r.PathValue("name"), in.ID); ok {
				out.Instances[i].Health = &h
			}
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// MetricsView is the answer of GET /v1/apps/{name}/metrics: the app's
// latest traffic window from the metrics service, null before the first.
type MetricsView struct {
	App    string                  `json:"app"`
	Window *events.UpstreamMetrics `json:"window" jsonschema:"nullable"`
}

func (s *server) getMetrics(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if _, err := s.store.Get(r.Context(), name); err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	out := MetricsView{App: name}
	if s.traffic != nil {
		if m, ok := s.traffic.Latest(name); ok {
			out.Window = &m
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *server) postInstance(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	body, ok := s.readBody(w, r)
	if !ok {
		return
	}
	in, err := DecodeInstance(body)
	var ve events.ValidationError
	switch {
	case errors.As(err, &ve):
		writeValidation(w, ve)
		return
	case err != nil:
		writeError(w, http.StatusBadRequest, CodeBadRequest, err.Error(), nil)
		return
	}
	rev, created, err := s.store.PutInstance(r.Context(), name, in)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	code := http.StatusOK
	if created {
		code = http.StatusCreated
	}
	s.log.Info().Str("app", name).Str("instance", in.ID).Uint64("revision", rev).Bool("created", created).Msg("instance registered")
	writeJSON(w, code, InstanceResult{Instance: in, Revision: rev})
}

func (s *server) deleteInstance(w http.ResponseWriter, r *http.Request) {
	name, id := r.PathValue("name"), r.PathValue("id")
	rev, err := s.store.RemoveInstance(r.Context(), name, id)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	s.log.Info().Str("app", name).Str("instance", id).Uint64("revision", rev).Msg("instance deregistered")
	w.WriteHeader(http.StatusNoContent)
}

func (s *server) getStatus(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, StatusView{Nodes: s.status.Nodes()})
}

// readBody reads the request body up to the limit, answering 413 or 400
// itself when it cannot.
func (s *server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.maxBody))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		writeError(w, http.StatusRequestEntityTooLarge, CodeBadRequest, fmt.Sprintf("body larger than %d bytes", tooBig.Limit), nil)
		return nil, false
	case err != nil:
		writeError(w, http.StatusBadRequest, CodeBadRequest, "cannot read body: "+err.Error(), nil)
		return nil, false
	}
	return body, true
}

// DecodeInstance reads an events.Instance from JSON strictly: unknown
// fields, type errors and invalid values are returned as an
// events.ValidationError naming each field; a body that is not a JSON
// object is a plain error.
func DecodeInstance(body []byte) (events.Instance, error) {
	in, _, err := decodeObject[events.Instance](body)
	if err != nil {
		return events.Instance{}, err
	}
	if err := in.Validate(); err != nil {
		var ve events.ValidationError
		if errors.As(err, &ve) {
			return events.Instance{}, ve
		}
		return events.Instance{}, fmt.Errorf("validate instance: %w", err)
	}
	return in, nil
}

// decodeObject reads a T from a JSON object strictly: unknown and mistyped
// fields are an events.ValidationError naming each by path; a body that is
// not a JSON object is a plain error. It also returns the object itself.
func decodeObject[T any](body []byte) (T, map[string]any, error) {
	var zero T
	var tree any
	if err := json.Unmarshal(body, &tree); err != nil {
		return zero, nil, fmt.Errorf("body is not JSON: %w", err)
	}
	obj, ok := tree.(map[string]any)
	if !ok {
		return zero, nil, errors.New("body must be a JSON object")
	}
	if ve := spec.Mismatches(tree, zero); len(ve) > 0 {
		return zero, nil, ve
	}
	var out T
	if fe := spec.StrictDecode(tree, &out); fe != nil {
		return zero, nil, events.ValidationError{*fe}
	}
	return out, obj, nil
}
