// Package containers tests the locally built images (`make images`) with
// testcontainers-go on a private Docker network: NATS with one user per
// service, routing, health, the renderer with its NGINX and demo backends.
// The tests skip when no Docker engine answers or the images are missing,
// and fail instead when ORCHESTRY_REQUIRE_INTEGRATION=1.
package containers
