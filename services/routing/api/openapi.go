package api

import (
	_ "embed" // openapi.json
	"net/http"
)

//go:generate go run ./internal/openapi/gen -out openapi.json

// OpenAPI is the OpenAPI 3.1 description of this API, served at
// GET /v1/openapi.json. It is generated from the Go types by `go generate`
// (internal/openapi) and held equal to the generator's output by a test.
//
//go:embed openapi.json
var OpenAPI []byte

// getOpenAPI serves the OpenAPI document. Like every other route it needs
// the bearer token.
func (s *server) getOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(OpenAPI)
}
