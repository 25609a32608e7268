package api

import (
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/orchestry/orchestry/pkg/events"
	"github.com/orchestry/orchestry/services/routing/store"
)

// RoutesView is the answer of GET /v1/apps/{name}/routes.
type RoutesView struct {
	Routes   []events.Rule `json:"routes"`
	Revision uint64        `json:"revision"`
}

// RouteResult is the answer of PUT /v1/apps/{name}/routes/{id}.
type RouteResult struct {
	Route    events.Rule `json:"route"`
	Revision uint64      `json:"revision"`
}

func (s *server) listRoutes(w http.ResponseWriter, r *http.Request) {
	e, err := s.store.Get(r.Context(), r.PathValue("name"))
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	routes := e.Record.App.Spec.Rules
	if routes == nil {
		routes = []events.Rule{}
	}
	writeJSON(w, http.StatusOK, RoutesView{Routes: routes, Revision: e.Revision})
}

func (s *server) getRoute(w http.ResponseWriter, r *http.Request) {
	name, id := r.PathValue("name"), r.PathValue("id")
	e, err := s.store.Get(r.Context(), name)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	i := slices.IndexFunc(e.Record.App.Spec.Rules, func(x events.Rule) bool { return x.ID == id })
	if i < 0 {
		s.writeStoreError(w, r, fmt.Errorf("%s: rule %s: %w", name, id, store.ErrRuleNotFound))
		return
	}
	writeJSON(w, http.StatusOK, e.Record.App.Spec.Rules[i])
}

// putRoute adds or replaces one rule. The body is the rule as JSON; its id
// may be left out and must otherwise equal the one in the URL. The app is
// checked with its new rules, and a 422 names every bad field (as
// spec.rules[i]....) with nothing stored.
func (s *server) putRoute(w http.ResponseWriter, r *http.Request) {
	name, id := r.PathValue("name"), r.PathValue("id")
	body, ok := s.readBody(w, r)
	if !ok {
		return
	}
	rule, err := decodeRule(body, id)
	var ve events.ValidationError
	switch {
	case errors.As(err, &ve):
		writeValidation(w, ve)
		return
	case err != nil:
		writeError(w, http.StatusBadRequest, CodeBadRequest, err.Error(), nil)
		return
	}
	rev, created, err := s.store.PutRule(r.Context(), name, rule)
	if errors.As(err, &ve) {
		writeValidation(w, ve)
		return
	}
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	code := http.StatusOK
	if created {
		code = http.StatusCreated
	}
	s.log.Info().Str("app", name).Str("rule", id).Uint64("revision", rev).Bool("created", created).Msg("routing rule stored")
	writeJSON(w, code, RouteResult{Route: rule, Revision: rev})
}

func (s *server) deleteRoute(w http.ResponseWriter, r *http.Request) {
	name, id := r.PathValue("name"), r.PathValue("id")
	rev, err := s.store.RemoveRule(r.Context(), name, id)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	s.log.Info().Str("app", name).Str("rule", id).Uint64("revision", rev).Msg("routing rule removed")
	w.WriteHeader(http.StatusNoContent)
}

// decodeRule reads a rule strictly from JSON, naming unknown and mistyped
// fields; id comes from the URL.
func decodeRule(body []byte, id string) (events.Rule, error) {
	rule, obj, err := decodeObject[events.Rule](body)
	if err != nil {
		return events.Rule{}, err
	}
	if got, ok := obj["id"]; ok && got != id {
		return events.Rule{}, events.ValidationError{{Field: "id", Reason: fmt.Sprintf("must equal the id in the URL (%q)", id)}}
	}
	rule.ID = id
	return rule, nil
}
