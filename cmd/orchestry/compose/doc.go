// Package compose holds the end-to-end failure scenarios run against the
// docker compose stack of deploy/compose/ (`make compose-test`, build tag
// compose): NATS node loss, kill -9 of every service, a backend dying and
// permissions refused by NATS, measured under a request loop through both
// NGINX nodes.
package compose
